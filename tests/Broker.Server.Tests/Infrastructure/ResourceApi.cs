using System.Net;
using Broker.ResourceServer;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Broker.Server.Tests.Infrastructure;

/// <summary>
/// A minimal API that trusts Broker the stock way: AddJwtBearer with Authority = the broker's
/// issuer (discovery + JWKS), nothing Broker-specific — or, given a revocation address, the same
/// with Broker's resource-server SDK (revocation stream) added.
/// </summary>
public sealed class ResourceApi : IAsyncDisposable
{
    private readonly WebApplication _app;

    private ResourceApi(WebApplication app, string address)
    {
        _app = app;
        Address = address;
    }

    public string Address { get; }

    /// <param name="resourceServerToken">With <paramref name="revocationAddress"/>: the SDK's resource-server token for the revocation stream.</param>
    /// <param name="tlsCertificate">When set, the API listens on HTTPS with it and asks for client certificates (leaving their chain to the check under test).</param>
    /// <param name="revocationHandler">With a TLS broker: the handler for the revocation channel (trusting the broker's certificate).</param>
    public static async Task<ResourceApi> StartAsync(string authority, string audience, string? revocationAddress = null, Func<string>? resourceServerToken = null, System.Security.Cryptography.X509Certificates.X509Certificate2? tlsCertificate = null, HttpMessageHandler? revocationHandler = null)
    {
        if (revocationAddress is not null && resourceServerToken is null)
        {
            throw new ArgumentNullException(nameof(resourceServerToken), "The revocation stream admits authenticated resource servers only.");
        }

        var port = Broker.Testing.RedisServer.FreePort();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port, listen =>
        {
            if (tlsCertificate is not null)
            {
                listen.UseHttps(tlsCertificate, https =>
                {
                    https.ClientCertificateMode = Microsoft.AspNetCore.Server.Kestrel.Https.ClientCertificateMode.AllowCertificate;
                    https.ClientCertificateValidation = (_, _, _) => true;
                });
            }
        }));
        if (revocationAddress is null)
        {
            builder.Services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme).AddJwtBearer(options =>
            {
                options.Authority = authority;
                options.Audience = audience;
                options.RequireHttpsMetadata = false; // loopback test issuer
                options.MapInboundClaims = false;
                options.TokenValidationParameters.ValidTypes = ["at+jwt"];
            });
            builder.Services.AddAuthorization();
        }
        else
        {
            builder.Services.AddBrokerResourceServer(options =>
            {
                options.Authority = authority;
                options.Audience = audience;
                options.RevocationAddress = revocationAddress;
                options.RevocationTokenProvider = _ => ValueTask.FromResult(resourceServerToken!());
                options.RevocationHttpHandler = revocationHandler;
                options.RequireHttpsMetadata = false; // loopback test issuer
            });
        }

        var app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapGet("/whoami", (HttpContext context) => new
        {
            sub = context.User.FindFirst("sub")?.Value,
            scope = context.User.FindFirst("scope")?.Value,
            phase = context.User.FindFirst("phase")?.Value,
        }).RequireAuthorization();
        await app.StartAsync();
        if (revocationAddress is not null)
        {
            // The SDK refuses every token until its revocation stream is current (fail closed), so a
            // test's first call would race the stream's first read on a loaded machine.
            var revocations = app.Services.GetRequiredService<Broker.ResourceServer.BrokerRevocationClient>();
            await Broker.Testing.Poll.UntilAsync(() => revocations.IsCurrent, $"the resource server's revocation stream from {revocationAddress} is current");
        }

        return new ResourceApi(app, $"{(tlsCertificate is null ? "http" : "https")}://127.0.0.1:{port}");
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
