using System.Net;
using System.Text.Json.Nodes;
using Broker.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Broker.Server.Tests.Infrastructure;

/// <summary>
/// A stand-in for the organisation's OIDC IdP (outside Broker's control, so faked here): real
/// Kestrel serving discovery and JWKS, minting operator tokens with real ES256 signatures.
/// </summary>
public sealed class TestOperatorIdp : IAsyncDisposable
{
    public const string Audience = "broker-admin";

    private readonly WebApplication _app;
    private readonly TestTrustDomain _keys;

    private TestOperatorIdp(WebApplication app, TestTrustDomain keys, string issuer)
    {
        _app = app;
        _keys = keys;
        Issuer = issuer;
    }

    public string Issuer { get; }

    public static async Task<TestOperatorIdp> StartAsync()
    {
        var port = RedisServer.FreePort();
        var issuer = $"http://127.0.0.1:{port}";
        var keys = new TestTrustDomain("idp.example.org", keyId: "idp-key-1");
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
        var app = builder.Build();
        app.MapGet("/.well-known/openid-configuration", () => Results.Json(new { issuer, jwks_uri = issuer + "/jwks" }));
        app.MapGet("/jwks", () => Results.Content(keys.JwksJson(use: null), "application/json"));
        await app.StartAsync();
        return new TestOperatorIdp(app, keys, issuer);
    }

    /// <summary>An operator token for <paramref name="subject"/> with <paramref name="roles"/>.</summary>
    public string Token(string subject, string[] roles, string audience = Audience, TimeSpan? lifetime = null, DateTimeOffset? now = null)
    {
        var issuedAt = now ?? DateTimeOffset.UtcNow;
        var payload = new JsonObject
        {
            ["iss"] = Issuer,
            ["sub"] = subject,
            ["aud"] = audience,
            ["iat"] = issuedAt.ToUnixTimeSeconds(),
            ["exp"] = (issuedAt + (lifetime ?? TimeSpan.FromMinutes(10))).ToUnixTimeSeconds(),
            ["roles"] = new JsonArray(roles.Select(r => (JsonNode)r).ToArray()),
        };
        return _keys.Sign(new JsonObject { ["alg"] = "ES256", ["kid"] = _keys.KeyId, ["typ"] = "JWT" }, payload);
    }

    /// <summary>A resource-server token (client credentials at a real IdP): the resource-server audience and role.</summary>
    public string ResourceServerToken() => Token("test-resource-server", [ResourceServerTokenHandler.Role], ResourceServerTokenHandler.Audience);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _keys.Dispose();
    }

}
