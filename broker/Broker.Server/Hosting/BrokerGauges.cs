using Broker.Core.Approvals;
using Broker.Core.Audit;
using Broker.Core.Diagnostics;
using Broker.Core.Revocation;
using System.Diagnostics.Metrics;

namespace Broker.Server.Hosting;

/// <summary>
/// Gauges read from this node's live state at collection time: whether it can vouch for its
/// revocation state (and how old that confirmation is), the size of its revocation index,
/// the fleet-wide freeze, audit writability and the fleet's pending approvals.
/// </summary>
internal sealed class BrokerGauges
{
    public BrokerGauges(BrokerMetrics metrics, RevocationFeed feed, FileAuditSink audit, PendingApprovalsProbe approvals, TimeProvider time)
    {
        var meter = metrics.Meter;
        meter.CreateObservableGauge(
            "broker.revocation.staleness",
            () => feed.ConfirmedAt.UtcTicks == 0 ? [] : new[] { new Measurement<double>((time.GetUtcNow() - feed.ConfirmedAt).TotalSeconds) },
            unit: "s",
            description: "Time since this node last confirmed it holds every revocation; issuance is refused past the staleness bound (2 s by default).");
        meter.CreateObservableGauge(
            "broker.revocation.current",
            () => feed.IsCurrent ? 1 : 0,
            unit: "{bool}",
            description: "1 while this node can vouch for its revocation state (it issues and introspects), 0 while it fails closed.");
        meter.CreateObservableGauge(
            "broker.revocation.index.entries",
            () => feed.Index.Count,
            unit: "{entry}",
            description: "Revocation selectors in force in this node's in-memory index.");
        meter.CreateObservableGauge(
            "broker.issuance.frozen",
            () => feed.Freeze is null ? 0 : 1,
            unit: "{bool}",
            description: "1 while a responder's fleet-wide freeze is in force (brokerctl freeze).");
        meter.CreateObservableGauge(
            "broker.audit.writable",
            () => audit.IsHealthy ? 1 : 0,
            unit: "{bool}",
            description: "1 while the last audit batch was made durable; 0 while issuance fails with AUDIT_UNAVAILABLE.");
        meter.CreateObservableGauge(
            "broker.approvals.pending",
            () => approvals.Pending is { } pending ? [new Measurement<long>(pending)] : Array.Empty<Measurement<long>>(),
            unit: "{request}",
            description: "Approval requests waiting for a human, fleet-wide (every node reports the same value: use max, not sum).");
    }
}

/// <summary>Counts the fleet's pending approvals in shared state now and then, so a scrape never waits on Redis.</summary>
internal sealed partial class PendingApprovalsProbe(ApprovalService approvals, ILogger<PendingApprovalsProbe> logger) : BackgroundService
{
    internal static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    /// <summary>More than this many pending requests reads as this many: the gauge is for alerting, not accounting.</summary>
    private const int Limit = 10_000;

    private long _pending = -1;

    /// <summary>The last count read, or null before the first read succeeded.</summary>
    public long? Pending => Interlocked.Read(ref _pending) is var value and >= 0 ? value : null;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval);
        do
        {
            try
            {
                var pending = await approvals.ListAsync(Limit, stoppingToken);
                Interlocked.Exchange(ref _pending, pending.Count);
            }
            catch (Broker.Core.Errors.BrokerException ex)
            {
                // Unknown is reported as absent, not as zero.
                Interlocked.Exchange(ref _pending, -1);
                Log.ProbeFailed(logger, ex.Reason);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 7100, Level = LogLevel.Debug, Message = "Counting pending approvals failed: {Reason}")]
        public static partial void ProbeFailed(ILogger logger, string reason);
    }
}
