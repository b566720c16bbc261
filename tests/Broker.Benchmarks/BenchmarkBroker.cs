using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using Broker.Core.Attestation;
using Broker.Core.Audit;
using Broker.Core.State;
using Broker.Server.Hosting;
using Broker.Testing;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using StackExchange.Redis;

namespace Broker.Benchmarks;

/// <summary>What the benchmark may swap out of the production path, to see what each part costs.</summary>
internal sealed record Ablations(bool NoAudit, bool NoRedis, bool NoProofCache)
{
    public bool Any => NoAudit || NoRedis || NoProofCache;

    public override string ToString() => !Any
        ? "none (full production path)"
        : string.Join(", ", new[]
        {
            NoAudit ? "no-audit (no-op sink instead of the fsync'd file)" : null,
            NoRedis ? "no-redis (in-memory store instead of Redis)" : null,
            NoProofCache ? "no-proof-cache (cold path: a fresh JWT-SVID per call, no validated-proof cache)" : null,
        }.Where(s => s is not null));
}

/// <summary>
/// One broker node in production mode, in this process: real Kestrel (gRPC over h2c on one free
/// loopback port, discovery/JWKS on another), the shipped registration (<c>AddBroker</c> /
/// <c>MapBroker</c>), Redis state, the durable file audit, a policy file and a PEM signing key.
/// Only the ablation switches replace anything, and they are off by default.
/// </summary>
internal sealed class BenchmarkBroker : IAsyncDisposable
{
    public const string Audience = "spiffe://example.org/broker";
    public const string ResourceAudience = "https://api.example.org";

    private readonly WebApplication _app;

    private readonly TestResourceServerIssuer _resourceServers;

    private BenchmarkBroker(WebApplication app, string grpcAddress, string auditPath, string issuer, TestResourceServerIssuer resourceServers)
    {
        _app = app;
        _resourceServers = resourceServers;
        GrpcAddress = grpcAddress;
        AuditPath = auditPath;
        Issuer = issuer;
    }

    public string Issuer { get; }

    public IServiceProvider Services => _app.Services;

    public string GrpcAddress { get; }

    public string AuditPath { get; }

    /// <summary>A token the SDK presents on this node's revocation stream.</summary>
    public string ResourceServerToken() => _resourceServers.Token();

    /// <param name="issuer">The issuer a cluster's nodes share; null for this node's own URL.</param>
    /// <param name="riskGate">Name a runtime-protection source in policy, which turns the risk gate on (a Redis read per issuance).</param>
    /// <param name="policy">Writes the policy from the JWKS path; null means the default benchmark policy.</param>
    public static async Task<BenchmarkBroker> StartAsync(string workDirectory, string jwksPath, string redisConfiguration, Ablations ablations, Breakdown? breakdown, string? issuer = null, string node = "node", bool riskGate = false, Func<string, string>? policy = null, IReadOnlyDictionary<string, string?>? settings = null)
    {
        var grpcPort = RedisServer.FreePort();
        var httpPort = RedisServer.FreePort();
        var policyPath = Path.Combine(workDirectory, node + "-policy.yaml");
        await File.WriteAllTextAsync(policyPath, (policy ?? (jwks => Policy(jwks)))(jwksPath) + (riskGate ? RiskGatePolicy : ""));

        // Nodes of one cluster share the signing key (the first writes it).
        var keyPath = Path.Combine(workDirectory, "signing.pem");
        if (!File.Exists(keyPath))
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            await File.WriteAllTextAsync(keyPath, key.ExportPkcs8PrivateKeyPem());
        }

        var auditPath = Path.Combine(workDirectory, node + "-audit");
        var checkpointKeyPath = Path.Combine(workDirectory, node + "-audit-checkpoint.pem");
        if (!File.Exists(checkpointKeyPath))
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            await File.WriteAllTextAsync(checkpointKeyPath, key.ExportPkcs8PrivateKeyPem());
        }


        // A fresh Redis has no revocation epoch (every node would refuse everything); an operator
        // restores it on day one. The benchmark plays that operator directly.
        await using (var redis = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redisConfiguration))
        {
            await redis.GetDatabase().StringSetAsync("bench:revocations:epoch", Guid.NewGuid().ToString("N"), when: When.NotExists);
        }

        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Production" });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Broker:Dev"] = "false",
            ["Broker:Issuer"] = issuer ?? $"http://127.0.0.1:{httpPort}",
            ["Broker:Audience"] = Audience,
            ["Broker:PolicyPath"] = policyPath,
            ["Broker:AuditPath"] = auditPath,
            ["Broker:Audit:CheckpointKeyPath"] = checkpointKeyPath,
            // As the README configures it: the start-up durability check reads CONFIG.
            ["Broker:Redis:Configuration"] = redisConfiguration + ",allowAdmin=true",
            ["Broker:Redis:KeyPrefix"] = "bench:",
            ["Broker:Signing:Keys:0:Path"] = keyPath,
            // Never contacted: the benchmark makes no admin calls.
            ["Broker:Operators:Authority"] = "https://operators.example.invalid",
        });
        if (settings is not null)
        {
            builder.Configuration.AddInMemoryCollection(settings);
        }

        var resourceServers = new TestResourceServerIssuer(Directory.CreateTempSubdirectory("broker-bench-rs-").FullName);
        builder.Configuration.AddInMemoryCollection(resourceServers.Settings);
        ConfigureQuietLogging(builder);
        builder.AddBroker();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, grpcPort, listen => listen.Protocols = HttpProtocols.Http2);
            kestrel.Listen(IPAddress.Loopback, httpPort, listen => listen.Protocols = HttpProtocols.Http1AndHttp2);
        });

        // Later registrations win; these exist only to take one cost out at a time.
        if (ablations.NoAudit)
        {
            builder.Services.AddSingleton<IAuditSink, NoOpAuditSink>();
        }

        if (ablations.NoRedis)
        {
            builder.Services.AddSingleton<ICredentialStore>(sp => new InMemoryCredentialStore(sp.GetRequiredService<TimeProvider>()));
        }

        if (ablations.NoProofCache)
        {
            builder.Services.Configure<AttestationOptions>(o => o.ValidatedProofCacheSize = 0);
        }

        breakdown?.Register(builder.Services, fileAudit: !ablations.NoAudit, redisStore: !ablations.NoRedis);

        var app = builder.Build();
        app.MapBroker();
        await app.StartAsync();
        return new BenchmarkBroker(app, $"http://127.0.0.1:{grpcPort}", auditPath, issuer ?? $"http://127.0.0.1:{httpPort}", resourceServers);
    }

    public GrpcChannel CreateChannel() => Channels.Create(GrpcAddress);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _resourceServers.Dispose();
    }

    /// <summary>Console at Warning: per-request Information logs would measure the console, not the broker.</summary>
    public static void ConfigureQuietLogging(WebApplicationBuilder builder)
    {
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
    }

    /// <summary>The benchmark policy: agents under /agents/ get read scopes in planning for up to <paramref name="planningMaxTtl"/>.</summary>
    internal static string Policy(string jwksPath, string planningMaxTtl = "10m") => $"""
        version: 1
        trust:
          spiffe:
            - trust_domain: example.org
              jwt_bundle_file: {jwksPath}
              refresh: 5m
        agents:
          - name: bench-agents
            match: spiffe://example.org/agents/*
            phases:
              planning:
                scopes: [repo:read, tickets:read]
                audiences: [{ResourceAudience}]
                max_ttl: {planningMaxTtl}
              execution:
                scopes: [repo:read, deploy:staging]
                audiences: [{ResourceAudience}]
                max_ttl: 5m
        """;

    /// <summary>The runtime-protection service that may report signals when the gate is on.</summary>
    public const string RiskSource = "spiffe://example.org/security/runtime-protection";

    private const string RiskGatePolicy = $"""

        signals:
          sources:
            - {RiskSource}
          containment: critical
          max_validity: 15m
        """;

    /// <summary>Stands in for the audit file: accepts every event at once, durably nowhere.</summary>
    private sealed class NoOpAuditSink : IAuditSink
    {
        public ValueTask AppendAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
        {
            // Serialize anyway, so the ablation removes the write and fsync, not the JSON.
            _ = AuditJsonContext.ToLine(auditEvent);
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>Client channels built the same way for both servers, so only the server side differs.</summary>
internal static class Channels
{
    public static GrpcChannel Create(string address) => GrpcChannel.ForAddress(address, new GrpcChannelOptions
    {
        HttpHandler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
        },
    });

    public static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
