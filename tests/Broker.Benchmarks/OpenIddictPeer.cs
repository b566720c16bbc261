using System.Net;
using System.Security.Claims;
using System.Security.Cryptography;
using Broker.Testing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Broker.Benchmarks;

/// <summary>
/// The .NET OAuth server people would pick, as the token endpoint's peer: OpenIddict's
/// client_credentials grant on real Kestrel (HTTP/1.1 on loopback, like Broker's endpoint in the
/// same run), ES256 JWT access tokens (not encrypted) carrying the claims a Broker token carries.
/// It runs in degraded mode (no database): client authentication is one constant-time secret
/// compare, the least work such a server can do per token.
/// </summary>
internal sealed class OpenIddictPeer : IAsyncDisposable
{
    public const string ClientSecret = "bench-secret-0123456789abcdef";

    private readonly WebApplication _app;

    private OpenIddictPeer(WebApplication app, string tokenEndpoint)
    {
        _app = app;
        TokenEndpoint = tokenEndpoint;
    }

    public string TokenEndpoint { get; }

    public static async Task<OpenIddictPeer> StartAsync()
    {
        var port = RedisServer.FreePort();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Production" });
        BenchmarkBroker.ConfigureQuietLogging(builder);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port, listen => listen.Protocols = HttpProtocols.Http1AndHttp2));
        var signingKey = new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP256)) { KeyId = "peer-es256" };
        var secret = System.Text.Encoding.UTF8.GetBytes(ClientSecret);

        builder.Services.AddOpenIddict().AddServer(options =>
        {
            options.EnableDegradedMode();
            options.SetTokenEndpointUris("/connect/token");
            options.AllowClientCredentialsFlow();
            options.RegisterScopes("repo:read", "tickets:read");
            options.AddSigningKey(signingKey);
            options.AddEphemeralEncryptionKey();
            options.DisableAccessTokenEncryption();
            options.SetAccessTokenLifetime(TimeSpan.FromMinutes(10));
            options.UseAspNetCore().DisableTransportSecurityRequirement();

            options.AddEventHandler<OpenIddictServerEvents.ValidateTokenRequestContext>(handler => handler.UseInlineHandler(context =>
            {
                var presented = System.Text.Encoding.UTF8.GetBytes(context.ClientSecret ?? "");
                if (string.IsNullOrEmpty(context.ClientId) || !CryptographicOperations.FixedTimeEquals(presented, secret))
                {
                    context.Reject(Errors.InvalidClient, "The client credentials are not valid.");
                }

                return default;
            }));

            options.AddEventHandler<OpenIddictServerEvents.HandleTokenRequestContext>(handler => handler.UseInlineHandler(context =>
            {
                var identity = new ClaimsIdentity(TokenValidationParameters.DefaultAuthenticationType, Claims.Name, Claims.Role);
                identity.SetClaim(Claims.Subject, "spiffe://example.org/agents/" + context.ClientId);
                identity.SetClaim(Claims.JwtId, Guid.NewGuid().ToString("N"));
                identity.SetClaim("task", "bench-task-" + context.ClientId);
                identity.SetClaim("phase", "planning");
                identity.SetScopes(context.Request.GetScopes());
                identity.SetAudiences(BenchmarkBroker.ResourceAudience);
                identity.SetDestinations(_ => [Destinations.AccessToken]);
                context.SignIn(new ClaimsPrincipal(identity));
                return default;
            }));
        });

        var app = builder.Build();
        await app.StartAsync();
        return new OpenIddictPeer(app, $"http://127.0.0.1:{port}/connect/token");
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
