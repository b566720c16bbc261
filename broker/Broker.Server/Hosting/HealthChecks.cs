using Broker.Core.Audit;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using StackExchange.Redis;

namespace Broker.Server.Hosting;

/// <summary>The service names of the gRPC health service, besides "" (all checks).</summary>
public static class HealthServices
{
    public const string Prefix = "broker.";

    /// <summary>SERVING while the process answers calls (liveness probes): only the <see cref="Process"/> check.</summary>
    public const string Liveness = "liveness";

    /// <summary>The check that is healthy whenever it runs at all.</summary>
    public const string Process = "process";

    /// <summary>Each answers for one check, as <c>broker.audit</c>, <c>broker.state</c>, <c>broker.revocations</c>.</summary>
    public static readonly IReadOnlyList<string> Checks = ["audit", "state", "revocations"];
}

/// <summary>Unhealthy while the last audit batch could not be made durable (issuance is refused meanwhile).</summary>
internal sealed class AuditHealthCheck(FileAuditSink sink) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(sink.IsHealthy ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy("audit log not writable"));
}

/// <summary>Unhealthy while Redis does not answer (issuance fails closed meanwhile). Healthy in --dev (in memory).</summary>
internal sealed class StateHealthCheck(IServiceProvider services) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (services.GetService<IConnectionMultiplexer>() is not { } redis)
        {
            return HealthCheckResult.Healthy("in-memory state");
        }

        try
        {
            await redis.GetDatabase().PingAsync();
            return HealthCheckResult.Healthy();
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return HealthCheckResult.Unhealthy("redis unreachable");
        }
    }
}

/// <summary>Unhealthy while this node cannot confirm it knows every revocation (issuance is refused meanwhile).</summary>
internal sealed class RevocationHealthCheck(Broker.Core.Revocation.RevocationFeed feed) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(feed.IsCurrent
            ? HealthCheckResult.Healthy()
            : HealthCheckResult.Unhealthy(feed.Epoch is null ? "revocation state lost or not yet read" : "revocation state stale"));
}
