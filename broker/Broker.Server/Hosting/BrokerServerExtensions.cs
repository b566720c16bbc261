using Broker.Core.Attestation;
using Broker.Core.Audit;
using Broker.Core.Issuance;
using Broker.Core.Policy;
using Broker.Core.Revocation;
using Broker.Core.Signing;
using Broker.Core.State;
using Broker.Redis;
using Broker.Server.Endpoints;
using Broker.Server.Internal;
using Broker.Server.OAuth;
using Broker.Server.OperatorConsole;
using Broker.Server.Services;
using Broker.Server.Ssf.Transmitter;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Broker.Server.Hosting;

public static class BrokerServerExtensions
{
    /// <summary>Largest gRPC message accepted; proofs and requests are small, so anything bigger is hostile.</summary>
    public const int MaxRequestBytes = 64 * 1024;

    /// <summary>
    /// Registers the broker. Throws <see cref="BrokerStartupException"/> listing every missing
    /// security setting when not in --dev.
    /// </summary>
    public static WebApplicationBuilder AddBroker(this WebApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(BrokerOptions.Section).Get<BrokerOptions>() ?? new BrokerOptions();
        TokenLifetimeSettings.Apply(options, builder.Configuration);
        ClockSkewSettings.Apply(options);
        if (options.Dev)
        {
            var grpcPort = DevPorts.Read(builder.Configuration, DevPorts.GrpcKey, DevEnvironment.DefaultGrpcPort, "--grpc-port");
            var httpPort = DevPorts.Read(builder.Configuration, DevPorts.HttpKey, DevEnvironment.DefaultHttpPort, "--http-port");
            if (grpcPort == httpPort)
            {
                throw new BrokerStartupException([$"BRK1162: --grpc-port and --http-port are both {grpcPort}; dev mode needs two ports."]);
            }

            builder.Services.AddSingleton(DevEnvironment.Prepare(options, grpcPort, httpPort));
            builder.WebHost.ConfigureKestrel(kestrel =>
            {
                kestrel.Listen(System.Net.IPAddress.Loopback, grpcPort, l => l.Protocols = HttpProtocols.Http2);
                kestrel.Listen(System.Net.IPAddress.Loopback, httpPort, l => l.Protocols = HttpProtocols.Http1);
            });
        }

        var problems = StartupValidation.Problems(options).Concat(ClockSkewSettings.Problems(options, builder.Configuration)).ToList();
        if (problems.Count > 0)
        {
            throw new BrokerStartupException(problems);
        }

        if (string.IsNullOrEmpty(options.Audience))
        {
            options.Audience = options.Issuer;
        }

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.ConfigureHttpsDefaults(https =>
            {
                // mTLS is optional per connection; the chain is validated against the SPIFFE
                // trust domain's bundle by the X.509-SVID attestor, not the OS trust store.
                https.ClientCertificateMode = ClientCertificateMode.AllowCertificate;
                https.AllowAnyClientCertificate();
            });
        });

        builder.AddBrokerObservability(options);
        builder.AddBrokerRateLimits();
        builder.Services.AddBrokerCore(options, builder.Configuration);
        builder.Services.AddOperatorAuthentication(options);
        builder.Services.AddBrokerOAuth(builder.Configuration);
        builder.Services.AddResourceServerAuthentication(options, builder.Configuration);
        builder.Services.AddSsfTransmitter(options, builder.Configuration);
        builder.AddOperatorConsole(options);
        builder.Services.AddGrpc(grpc =>
        {
            grpc.MaxReceiveMessageSize = MaxRequestBytes;
            grpc.EnableDetailedErrors = false;
            grpc.Interceptors.Add<BrokerErrorInterceptor>();
        });
        if (options.GrpcReflection ?? options.Dev)
        {
            builder.Services.AddGrpcReflection();
        }

        builder.Services.AddGrpcHealthChecks(health =>
            {
                // "" is every check (readiness). Each dependency also answers on its own, and
                // "liveness" only says the process serves calls, so a Redis outage makes nodes
                // unready without restarting them.
                foreach (var check in HealthServices.Checks)
                {
                    health.Services.Map(HealthServices.Prefix + check, c => c.Name == check);
                }

                health.Services.Map(HealthServices.Liveness, c => c.Name == HealthServices.Process);
            })
            .AddCheck(HealthServices.Process, () => HealthCheckResult.Healthy())
            .AddCheck<AuditHealthCheck>("audit")
            .AddCheck<StateHealthCheck>("state")
            .AddCheck<RevocationHealthCheck>("revocations");
        return builder;
    }

    internal static IServiceCollection AddBrokerCore(this IServiceCollection services, BrokerOptions options, IConfiguration? configuration = null)
    {
        services.AddSingleton(Options.Create(options));
        services.TryAddSingleton(TimeProvider.System);
        services.AddMetrics();
        services.TryAddSingleton<Broker.Core.Diagnostics.BrokerMetrics>();

        services.AddSingleton(sp => AuditSinkFactory.Create(
            options,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<FileAuditSink>>(),
            sp.GetRequiredService<Broker.Core.Diagnostics.BrokerMetrics>(),
            options.Audit.MirrorToRedis && sp.GetService<IConnectionMultiplexer>() is { } redis
                ? new RedisAuditMirror(redis, sp.GetRequiredService<RedisKeys>(), sp.GetRequiredService<ILogger<RedisAuditMirror>>(), options.Audit.MirrorMaxLength)
                : null,
            sp.GetService<IAuditHeadStore>()));
        services.AddSingleton<IAuditSink>(sp => sp.GetRequiredService<FileAuditSink>());
        if (!string.IsNullOrWhiteSpace(options.Redis.Configuration))
        {
            // Each node's signed chain head, off the host: deleting the newest records is caught.
            services.AddSingleton<IAuditHeadStore>(sp => new RedisAuditHeadStore(sp.GetRequiredService<IConnectionMultiplexer>(), sp.GetRequiredService<RedisKeys>()));
        }
        services.AddSingleton<FilePolicyProvider>(sp => new FilePolicyProvider(
            options.PolicyPath,
            sp.GetRequiredService<IAuditSink>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<FilePolicyProvider>>(),
            new FilePolicyProviderOptions { Constraints = policy => OperatorSeparation.Problems(options, policy) }));
        services.AddSingleton<IPolicyProvider>(sp => sp.GetRequiredService<FilePolicyProvider>());

        // First of the hosted services: the policy is in force and revocations read before anything else starts.
        services.AddHostedService<BrokerStartup>();
        services.AddBrokerAttestation(a =>
        {
            a.Audience = options.Audience;
            a.ClockSkew = options.ClockSkew;
        });

        if (string.IsNullOrWhiteSpace(options.Redis.Configuration))
        {
            services.AddSingleton<ICredentialStore>(sp => new InMemoryCredentialStore(sp.GetRequiredService<TimeProvider>()));
        }
        else
        {
            services.AddSingleton<IConnectionMultiplexer>(_ =>
            {
                return ConnectionMultiplexer.Connect(RedisConnectionSettings.Parse(options.Redis.Configuration, options.Revocation.StalenessBound));
            });
            services.AddSingleton(new RedisKeys(options.Redis.KeyPrefix));
            services.AddSingleton<ICredentialStore, RedisCredentialStore>();
            services.AddSingleton(new RedisRevocationOptions { MinReplicas = options.RevocationMinReplicas });
            services.AddSingleton(sp => new RedisDurableWrites(
                sp.GetRequiredService<IConnectionMultiplexer>(),
                sp.GetRequiredService<RedisRevocationOptions>(),
                () =>
                {
                    return ConnectionMultiplexer.Connect(RedisConnectionSettings.Parse(options.Redis.Configuration, options.Revocation.StalenessBound, "broker-durable-writes"));
                }));
            services.AddSingleton<IRevocationStore, RedisRevocationStore>();
        }

        services.TryAddSingleton<IRevocationStore, InMemoryRevocationStore>();
        services.AddSingleton(Options.Create(options.Revocation));
        services.AddSingleton<RevocationFeed>();
        services.AddHostedService(sp => sp.GetRequiredService<RevocationFeed>());
        services.AddSingleton<Revoker>();
        services.AddSingleton<TokenIntrospector>();

        var keyRing = BuildKeyRing(options);
        services.AddSingleton(keyRing);
        services.Configure<IssuanceOptions>(issuance =>
        {
            issuance.Issuer = options.Issuer;
            issuance.MaxTokenLifetime = options.MaxTokenLifetime;
            issuance.RepeatFromMemory = options.Issuance.RepeatFromMemory;
            issuance.RepeatFromMemoryMaxTasks = options.Issuance.RepeatFromMemoryMaxTasks;
        });
        services.AddRisk(options);
        services.AddApprovals(options);
        services.AddSecrets(options, configuration);
        services.AddSingleton<CredentialIssuer>();
        return services;
    }

    public static WebApplication MapBroker(this WebApplication app)
    {
        // Resolve eagerly so a bad policy, key or audit path stops start-up instead of the first call;
        // what needs I/O to finish (auditing the policy, reading revocations) is BrokerStartup's.
        var options = app.Services.GetRequiredService<IOptions<BrokerOptions>>().Value;
        _ = app.Services.GetRequiredService<IPolicyProvider>();
        _ = app.Services.GetRequiredService<SigningKeyRing>();
        _ = app.Services.GetRequiredService<IAuditSink>();

        if (app.Services.GetService<DevManifest>() is { } dev)
        {
            // Once the ports are bound, not before: a node refused at start (port taken, audit
            // folder in use) must neither point brokerctl at itself nor greet anyone. dev.json
            // first, so whoever reads the banner can already use brokerctl --dev.
            app.Lifetime.ApplicationStarted.Register(() =>
            {
                DevEnvironment.WriteManifest(options.DevDirectory, dev);
                BrokerCommandLine.PrintDevBanner(app, dev, options.DevDirectory);
            });
        }

        app.UseBrokerMetricsListener();
        app.UseOperatorConsole();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapGrpcService<CredentialGrpcService>();
        app.MapGrpcService<AdminGrpcService>();
        app.MapGrpcService<RevocationGrpcService>();
        app.MapGrpcService<AuditGrpcService>();
        app.MapRisk();
        app.MapApprovals();
        app.MapSecrets();
        if (options.GrpcReflection ?? options.Dev)
        {
            app.MapGrpcReflectionService();
        }

        app.MapGrpcHealthChecksService();
        app.MapWellKnown();
        app.MapBrokerOAuth();
        app.MapSsfTransmitter();
        app.MapBrokerObservability();
        app.MapOperatorConsole();
        app.MapGet("/healthz", async (HealthCheckService health) =>
        {
            var report = await health.CheckHealthAsync();
            return Results.Json(
                new { status = report.Status.ToString(), checks = report.Entries.ToDictionary(e => e.Key, e => e.Value.Status.ToString()) },
                statusCode: report.Status == HealthStatus.Healthy ? 200 : 503);
        });
        return app;
    }

    private static SigningKeyRing BuildKeyRing(BrokerOptions options)
    {
        try
        {
            var keys = options.Signing.Keys.Select(k => SigningKey.FromPemFile(k.Path, k.NotBefore ?? DateTimeOffset.MinValue)).ToList();
            var ring = new SigningKeyRing(keys, options.Signing.PublishAhead, options.MaxTokenLifetime, options.ClockSkew);
            _ = ring.Active(DateTimeOffset.UtcNow);
            return ring;
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or System.Security.Cryptography.CryptographicException or IOException)
        {
            throw new BrokerStartupException([$"BRK1008: signing keys are unusable: {ex.Message} (EC P-256 or P-384 PEM private keys; at least one with a not_before in the past)."]);
        }
    }
}

/// <summary>The broker cannot start safely; <see cref="Problems"/> says why, each with a stable id.</summary>
public sealed class BrokerStartupException(IReadOnlyList<string> problems)
    : Exception("Broker cannot start:" + Environment.NewLine + string.Join(Environment.NewLine, problems.Select(p => "  " + p)))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}
