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
    public BrokerGauges(BrokerMetrics metrics, RevocationFeed feed, FileAuditSink audit, ApprovalSweeper approvals, TimeProvider time)
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
