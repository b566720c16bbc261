using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Broker.Core.Diagnostics;

/// <summary>
/// The broker's own instruments, on the meter <see cref="MeterName"/>. Names and units follow
/// OpenTelemetry conventions (seconds, dotted names); docs/observability.md says what each
/// one means and which alert reads it. Tags never carry a token, proof or key: only phase,
/// outcome, reason code, RPC method and operation names.
/// </summary>
public sealed class BrokerMetrics
{
    public const string MeterName = "Broker";

    // Issuance sits between ~0.2 ms (in memory) and the staleness bound (2 s); audit fsync and
    // Redis calls between ~50 µs and a stalled disk or failover.
    private static readonly double[] LatencyBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly Histogram<double> _issuance;
    private readonly Counter<long> _refusals;
    private readonly Counter<long> _rateLimited;
    private readonly Histogram<double> _stateCalls;
    private readonly Histogram<double> _auditFsync;
    private readonly Histogram<long> _auditBatch;
    private readonly Histogram<double> _propagationLag;
    private readonly Counter<long> _approvalTransitions;
    private readonly Counter<long> _approvalNotifications;
    private readonly Counter<long> _issuedFromMemory;

    public BrokerMetrics(IMeterFactory meterFactory)
    {
        Meter = meterFactory.Create(MeterName, typeof(BrokerMetrics).Assembly.GetName().Version?.ToString());
        _issuance = Meter.CreateHistogram(
            "broker.issuance.duration",
            unit: "s",
            description: "IssueCredential calls by phase and outcome (issued, pending, refused, error), from request to answer.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
        _refusals = Meter.CreateCounter<long>(
            "broker.refusals",
            unit: "{refusal}",
            description: "Calls refused with a catalogued reason (docs/errors.md), by RPC method, reason and gRPC status.");
        _rateLimited = Meter.CreateCounter<long>(
            "broker.rate_limited",
            unit: "{refusal}",
            description: "Refusals past their caller's budget (Broker:RateLimit), answered RATE_LIMITED and counted into refusals.aggregated, by door and the reason they would have had.");
        _stateCalls = Meter.CreateHistogram(
            "broker.state.duration",
            unit: "s",
            description: "Calls to shared state (Redis in production) by operation and outcome.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
        _auditFsync = Meter.CreateHistogram(
            "broker.audit.fsync.duration",
            unit: "s",
            description: "One group commit of the audit log: write and fsync of a batch.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
        _auditBatch = Meter.CreateHistogram<long>(
            "broker.audit.batch.size",
            unit: "{record}",
            description: "Records made durable by one audit fsync.",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512] });
        _propagationLag = Meter.CreateHistogram(
            "broker.revocation.propagation.lag",
            unit: "s",
            description: "From a revocation being recorded (on any node) to this node applying it from the shared log.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
        _approvalTransitions = Meter.CreateCounter<long>(
            "broker.approvals.transitions",
            unit: "{request}",
            description: "Approval requests opened, approved, denied, expired and consumed on this node.");
        _approvalNotifications = Meter.CreateCounter<long>(
            "broker.approvals.notifications",
            unit: "{notice}",
            description: "Approval webhook notices by outcome: delivered, failed (after retries) or dropped (queue full).");
        _issuedFromMemory = Meter.CreateCounter<long>(
            "broker.issuance.from_memory",
            unit: "{credential}",
            description: "Credentials issued for a task this node had confirmed in the same phase, without asking shared state (Broker:Issuance:RepeatFromMemory).");
    }

    /// <summary>The meter, for gauges the host observes (revocation staleness, audit writability, pending approvals).</summary>
    public Meter Meter { get; }

    public void IssuanceCompleted(string phase, string outcome, TimeSpan elapsed) =>
        _issuance.Record(elapsed.TotalSeconds, new TagList { { "broker.phase", phase }, { "broker.outcome", outcome } });

    public void IssuedFromMemory() => _issuedFromMemory.Add(1);

    public void Refused(string method, string reason, string grpcStatus) =>
        _refusals.Add(1, new TagList { { "rpc.method", method }, { "broker.reason", reason }, { "rpc.grpc.status", grpcStatus } });

    public void RateLimited(string door, string reason) =>
        _rateLimited.Add(1, new TagList { { "broker.door", door }, { "broker.reason", reason } });

    public void StateCall(string operation, bool succeeded, TimeSpan elapsed) =>
        _stateCalls.Record(elapsed.TotalSeconds, new TagList { { "broker.operation", operation }, { "broker.outcome", succeeded ? "ok" : "error" } });

    public void AuditCommitted(int records, TimeSpan elapsed)
    {
        _auditFsync.Record(elapsed.TotalSeconds);
        _auditBatch.Record(records);
    }

    public void RevocationApplied(TimeSpan lag) => _propagationLag.Record(Math.Max(0, lag.TotalSeconds));

    public void ApprovalNotification(string outcome) =>
        _approvalNotifications.Add(1, new KeyValuePair<string, object?>("broker.outcome", outcome));

    public void ApprovalTransition(string transition) =>
        _approvalTransitions.Add(1, new KeyValuePair<string, object?>("broker.transition", transition));
}
