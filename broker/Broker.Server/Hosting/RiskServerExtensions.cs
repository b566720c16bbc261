using Broker.Core.Attestation;
using Broker.Core.Risk;
using Broker.Core.Ssf;
using Broker.Redis;
using Broker.Server.Services;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Broker.Server.Hosting;

/// <summary>
/// Runtime risk: signal intake, the issuance gate, and telemetry kept apart from audit (its
/// own file, and with Redis its own stream). See docs/risk.md.
/// </summary>
internal static class RiskServerExtensions
{
    public const string TelemetryFileName = "telemetry.log";

    public static IServiceCollection AddRisk(this IServiceCollection services, BrokerOptions options)
    {
        var telemetryPath = TelemetryPath(options);
        services.AddSingleton(_ => new FileTelemetrySink(telemetryPath));
        if (!string.IsNullOrWhiteSpace(options.Redis.Configuration))
        {
            services.AddSingleton<IRiskStore, RedisRiskStore>();
            services.AddSingleton(sp => new RedisTelemetrySink(sp.GetRequiredService<IConnectionMultiplexer>(), sp.GetRequiredService<RedisKeys>(), sp.GetRequiredService<FileTelemetrySink>()));
            services.AddSingleton<ITelemetrySink>(sp => sp.GetRequiredService<RedisTelemetrySink>());
            services.AddSingleton<ITelemetryReader>(sp => sp.GetRequiredService<RedisTelemetrySink>());
            services.AddSingleton<ISsfReplayStore, RedisSsfReplayStore>();
        }

        services.TryAddSingleton<ISsfReplayStore, InMemorySsfReplayStore>();

        // The transmitter's keys come through the attestation bundle client (no redirects) and limits.
        services.AddSingleton(sp => new SecurityEventReader(
            sp.GetRequiredService<IOptions<AttestationOptions>>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<IHttpClientFactory>().CreateClient(AttestationServiceCollectionExtensions.BundleHttpClientName),
            sp.GetService<ILogger<SecurityEventReader>>()));
        services.AddSingleton<Ssf.SsfReceiver>();

        services.TryAddSingleton<IRiskStore, InMemoryRiskStore>();
        services.TryAddSingleton<ITelemetrySink>(sp => sp.GetRequiredService<FileTelemetrySink>());
        services.TryAddSingleton<ITelemetryReader>(sp => sp.GetRequiredService<FileTelemetrySink>());
        services.TryAddSingleton(Options.Create(new RiskOptions { ClockSkew = options.ClockSkew }));
        services.AddSingleton<RiskGate>();
        services.AddSingleton<RiskService>();
        return services;
    }

    public static WebApplication MapRisk(this WebApplication app)
    {
        // Open the telemetry file at start-up, so a bad path stops the node rather than the first signal.
        _ = app.Services.GetRequiredService<ITelemetrySink>();
        app.MapGrpcService<SignalGrpcService>();
        app.MapGrpcService<RiskAdminGrpcService>();
        Ssf.SsfEndpoint.MapSsf(app);
        return app;
    }

    /// <summary>Broker:TelemetryPath, else telemetry.log next to the audit file; never the audit file itself.</summary>
    internal static string TelemetryPath(BrokerOptions options)
    {
        var audit = Path.GetFullPath(options.AuditPath);
        var path = string.IsNullOrWhiteSpace(options.TelemetryPath)
            ? Path.Combine(Path.GetDirectoryName(audit) ?? ".", TelemetryFileName)
            : Path.GetFullPath(options.TelemetryPath);
        if (string.Equals(path, audit, StringComparison.Ordinal))
        {
            throw new BrokerStartupException(["BRK1030: Broker:TelemetryPath is the audit file; runtime telemetry and the audit log are kept in separate files."]);
        }

        return path;
    }
}
