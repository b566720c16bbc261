using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Broker.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Broker.Console.Tests.Infrastructure;

/// <summary>
/// A stand-in for the organisation's operator IdP (outside Broker, so faked here): real Kestrel
/// serving discovery, JWKS, an authorization endpoint that signs in <see cref="User"/> at once,
/// and a token endpoint that refuses a code without its PKCE S256 verifier. ID tokens carry
/// real ES256 signatures, the nonce, and the operator's roles.
/// </summary>
public sealed class TestOidcProvider : IAsyncDisposable
{
    public const string ClientId = "broker-console";

    private readonly WebApplication _app;
    private readonly TestTrustDomain _keys;
    private readonly ConcurrentDictionary<string, Grant> _codes = new(StringComparer.Ordinal);

    private TestOidcProvider(WebApplication app, TestTrustDomain keys, string issuer)
    {
        _app = app;
        _keys = keys;
        Issuer = issuer;
    }

    private sealed record Grant(string RedirectUri, string Challenge, string? Nonce, string Subject, string[] Roles);

    public string Issuer { get; }

    /// <summary>Who the next authorization request signs in.</summary>
    public (string Subject, string[] Roles) User { get; set; } = ("oscar", ["approver"]);

    /// <summary>Codes redeemed with a verifier that matched their S256 challenge.</summary>
    public int PkceRedemptions { get; private set; }

    /// <summary>Also serves as an operator token issuer for the API (JWT-typed, audience broker-admin).</summary>
    public static async Task<TestOidcProvider> StartAsync()
    {
        var port = RedisServer.FreePort();
        var issuer = $"http://127.0.0.1:{port}";
        var keys = new TestTrustDomain("idp.example.org", keyId: "idp-key-1");
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
        var app = builder.Build();
        var provider = new TestOidcProvider(app, keys, issuer);
        app.MapGet("/.well-known/openid-configuration", () => Results.Json(new Dictionary<string, object>
        {
            ["issuer"] = issuer,
            ["authorization_endpoint"] = issuer + "/authorize",
            ["token_endpoint"] = issuer + "/token",
            ["jwks_uri"] = issuer + "/jwks",
            ["response_types_supported"] = new[] { "code" },
            ["subject_types_supported"] = new[] { "public" },
            ["id_token_signing_alg_values_supported"] = new[] { "ES256" },
            ["code_challenge_methods_supported"] = new[] { "S256" },
        }));
        app.MapGet("/jwks", () => Results.Content(keys.JwksJson(use: null), "application/json"));
        app.MapGet("/authorize", (HttpContext context) => provider.Authorize(context));
        app.MapPost("/token", (HttpRequest request) => provider.TokenAsync(request));
        await app.StartAsync();
        return provider;
    }

    private IResult Authorize(HttpContext context)
    {
        var q = context.Request.Query;
        if (q["client_id"] != ClientId || q["response_type"] != "code" || q["code_challenge_method"] != "S256" || string.IsNullOrEmpty(q["code_challenge"]))
        {
            return Results.BadRequest("authorization code with PKCE S256 only");
        }

        var code = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        _codes[code] = new Grant(q["redirect_uri"]!, q["code_challenge"]!, q["nonce"], User.Subject, User.Roles);
        return Results.Redirect($"{q["redirect_uri"]}?code={code}&state={Uri.EscapeDataString(q["state"]!)}&iss={Uri.EscapeDataString(Issuer)}");
    }

    private async Task<IResult> TokenAsync(HttpRequest request)
    {
        var form = await request.ReadFormAsync();
        if (form["grant_type"] != "authorization_code" || !_codes.TryRemove(form["code"].ToString(), out var grant)
            || form["redirect_uri"] != grant.RedirectUri || form["client_id"] != ClientId)
        {
            return Results.Json(new { error = "invalid_grant" }, statusCode: 400);
        }

        var verifier = form["code_verifier"].ToString();
        var challenge = Base64Url(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        if (verifier.Length < 43 || challenge != grant.Challenge)
        {
            return Results.Json(new { error = "invalid_grant", error_description = "PKCE verification failed" }, statusCode: 400);
        }

        PkceRedemptions++;
        var now = DateTimeOffset.UtcNow;
        var payload = new JsonObject
        {
            ["iss"] = Issuer,
            ["sub"] = grant.Subject,
            ["aud"] = ClientId,
            ["iat"] = now.ToUnixTimeSeconds(),
            ["exp"] = now.AddMinutes(5).ToUnixTimeSeconds(),
            ["roles"] = new JsonArray(grant.Roles.Select(r => (JsonNode)r).ToArray()),
        };
        if (grant.Nonce is not null)
        {
            payload["nonce"] = grant.Nonce;
        }

        var idToken = _keys.Sign(new JsonObject { ["alg"] = "ES256", ["kid"] = _keys.KeyId, ["typ"] = "JWT" }, payload);
        return Results.Json(new { id_token = idToken, access_token = "opaque-" + Guid.NewGuid().ToString("N"), token_type = "Bearer", expires_in = 300 });
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _keys.Dispose();
    }
}
