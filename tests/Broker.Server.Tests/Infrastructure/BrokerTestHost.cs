using System.Net;
using System.Security.Cryptography.X509Certificates;
using Broker.Server.Hosting;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

using Broker.Testing;

namespace Broker.Server.Tests.Infrastructure;

/// <summary>How to start one broker node for a test.</summary>
public sealed record BrokerTestHostOptions
{
    /// <summary>Policy file the node loads (required).</summary>
    public required string PolicyPath { get; init; }

    /// <summary>Audience proofs must carry.</summary>
    public string Audience { get; init; } = "spiffe://example.org/broker";

    /// <summary>Redis configuration; null means in-memory state.</summary>
    public string? RedisConfiguration { get; init; }

    public string RedisKeyPrefix { get; init; } = "broker:";

    /// <summary>When set, the gRPC port speaks TLS with this certificate and accepts client certificates.</summary>
    public X509Certificate2? TlsCertificate { get; init; }

    public TimeProvider? TimeProvider { get; init; }

    /// <summary>The issuer every node of a cluster shares; null means this node's own discovery URL.</summary>
    public string? Issuer { get; init; }

    /// <summary>The operator IdP (production mode); dev mode uses its own dev operator key.</summary>
    public string? OperatorAuthority { get; init; }

    public string? AuditPath { get; init; }

    /// <summary>Signing key PEM files; null means one generated key.</summary>
    public IReadOnlyList<string>? SigningKeyFiles { get; init; }

    /// <summary>More configuration (e.g. <c>Broker:Audit:MirrorToRedis</c>), applied over the defaults.</summary>
    public IReadOnlyDictionary<string, string?>? Settings { get; init; }

    /// <summary>The lowest level the node logs at (providers added later see only these).</summary>
    public LogLevel MinimumLogLevel { get; init; } = LogLevel.Warning;

    /// <summary>
    /// The resource-server token channels from <see cref="BrokerTestHost.CreateChannel"/> send on
    /// RevocationService calls; null: in dev mode the token the node wrote, in production none.
    /// </summary>
    public Func<string>? ResourceServerToken { get; init; }

    /// <summary>More plaintext HTTP/1.1 listeners on loopback (e.g. a dedicated metrics port); production mode only.</summary>
    public IReadOnlyList<int> ExtraHttpPorts { get; init; } = [];
}

/// <summary>
/// A real broker node on real Kestrel: gRPC over HTTP/2 on one free loopback port (h2c, or TLS
/// with client certificates), discovery and JWKS over HTTP on another. Same registration as
/// the shipped host (<c>AddBroker</c>/<c>MapBroker</c>).
/// </summary>
public sealed class BrokerTestHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private readonly Func<string>? _resourceServerToken;

    private BrokerTestHost(WebApplication app, string grpcAddress, string httpAddress, string issuer, string auditPath, Func<string>? resourceServerToken)
    {
        _app = app;
        _resourceServerToken = resourceServerToken;
        GrpcAddress = grpcAddress;
        HttpAddress = httpAddress;
        Issuer = issuer;
        AuditPath = auditPath;
    }

    public string GrpcAddress { get; }

    /// <summary>The issuer URL, which also serves discovery and JWKS.</summary>
    public string Issuer { get; }

    /// <summary>This node's own HTTP listener (JWKS, health, metrics); peers share the first node's <see cref="Issuer"/>.</summary>
    public string HttpAddress { get; }

    public string AuditPath { get; }

    public IServiceProvider Services => _app.Services;

    public static async Task<BrokerTestHost> StartAsync(BrokerTestHostOptions options)
    {
        // A free port can be taken by another process between choosing and binding it: try again.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await StartOnceAsync(options);
            }
            catch (IOException ex) when (attempt < 3 && ex.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException)
            {
            }
        }
    }

    private static async Task<BrokerTestHost> StartOnceAsync(BrokerTestHostOptions options)
    {
        var grpcPort = RedisServer.FreePort();
        var httpPort = RedisServer.FreePort();
        var issuer = options.Issuer ?? $"http://127.0.0.1:{httpPort}";
        var work = Directory.CreateTempSubdirectory("broker-node-").FullName;
        var auditPath = options.AuditPath ?? Path.Combine(work, "audit");
        var signingKeys = options.SigningKeyFiles ?? [WriteGeneratedKey(work)];

        // Without Redis the node runs --dev's in-memory store on the ports chosen here.
        var config = new Dictionary<string, string?>
        {
            ["Broker:Dev"] = options.RedisConfiguration is null ? "true" : "false",
            ["Broker:DevDirectory"] = Path.Combine(work, "dev"),
            ["Broker:DevGrpcPort"] = grpcPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Broker:DevHttpPort"] = httpPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Broker:Issuer"] = issuer,
            ["Broker:Audience"] = options.Audience,
            ["Broker:PolicyPath"] = options.PolicyPath,
            ["Broker:AuditPath"] = auditPath,
            ["Broker:Redis:Configuration"] = options.RedisConfiguration ?? "",
            ["Broker:Redis:KeyPrefix"] = options.RedisKeyPrefix,
            ["Broker:Operators:Authority"] = options.OperatorAuthority ?? "",
            ["Broker:Audit:CheckpointKeyPath"] = options.RedisConfiguration is null ? "" : WriteGeneratedKey(work, "audit-checkpoint.pem"),
        };
        for (var i = 0; i < signingKeys.Count; i++)
        {
            config[$"Broker:Signing:Keys:{i}:Path"] = signingKeys[i];
        }

        foreach (var (key, value) in options.Settings ?? new Dictionary<string, string?>())
        {
            config[key] = value;
        }

        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.Configuration.AddInMemoryCollection(config);
        builder.Logging.ClearProviders();
        builder.Logging.AddFilter(level => level >= options.MinimumLogLevel);
        if (options.TimeProvider is not null)
        {
            builder.Services.AddSingleton(options.TimeProvider);
        }

        builder.AddBroker();
        if (options.RedisConfiguration is not null)
        {
            builder.WebHost.ConfigureKestrel(kestrel =>
            {
                kestrel.Listen(IPAddress.Loopback, grpcPort, listen =>
                {
                    listen.Protocols = HttpProtocols.Http2;
                    if (options.TlsCertificate is not null)
                    {
                        listen.UseHttps(options.TlsCertificate);
                    }
                });
                kestrel.Listen(IPAddress.Loopback, httpPort, listen => listen.Protocols = HttpProtocols.Http1AndHttp2);
                foreach (var port in options.ExtraHttpPorts)
                {
                    kestrel.Listen(IPAddress.Loopback, port, listen => listen.Protocols = HttpProtocols.Http1);
                }
            });
        }

        var app = builder.Build();
        app.MapBroker();
        await app.StartAsync();
        var scheme = options.TlsCertificate is null ? "http" : "https";
        var resourceServerToken = options.ResourceServerToken
            ?? (options.RedisConfiguration is null ? ResourceServerTokenHandler.FromDevDirectory(Path.Combine(work, "dev")) : null);
        return new BrokerTestHost(app, $"{scheme}://127.0.0.1:{grpcPort}", $"http://127.0.0.1:{httpPort}", issuer, auditPath, resourceServerToken);
    }

    /// <summary>
    /// An h2c channel to this node (or TLS when the node has a certificate, trusting it and
    /// presenting <paramref name="clientCertificate"/>). RevocationService calls on it carry the
    /// node's resource-server token unless they set their own authorization.
    /// </summary>
    public GrpcChannel CreateChannel(X509Certificate2? clientCertificate = null, X509Certificate2? trustedServerCertificate = null)
    {
        var handler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true };
        if (GrpcAddress.StartsWith("https", StringComparison.Ordinal))
        {
            handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, _) =>
                trustedServerCertificate is null || (cert is not null && cert.GetCertHashString() == trustedServerCertificate.GetCertHashString());
            if (clientCertificate is not null)
            {
                handler.SslOptions.ClientCertificates = [clientCertificate];
            }
        }

        HttpMessageHandler outer = _resourceServerToken is null ? handler : new ResourceServerTokenHandler(_resourceServerToken, handler);
        return GrpcChannel.ForAddress(GrpcAddress, new GrpcChannelOptions { HttpHandler = outer });
    }

    /// <summary>A resource-server token this node accepts (introspection, the revocation stream).</summary>
    public string ResourceServerToken() =>
        _resourceServerToken?.Invoke() ?? throw new InvalidOperationException("This node was started without a resource-server token.");

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private static string WriteGeneratedKey(string directory, string name = "signing.pem")
    {
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        var path = Path.Combine(directory, name);
        File.WriteAllText(path, key.ExportPkcs8PrivateKeyPem());
        return path;
    }
}
