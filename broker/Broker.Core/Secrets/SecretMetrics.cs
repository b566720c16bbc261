using System.Diagnostics.Metrics;
using Broker.Core.Diagnostics;

namespace Broker.Core.Secrets;

/// <summary>
/// Instruments of the downstream-credential path, on the broker's meter (docs/observability.md,
/// docs/secrets.md). Tags carry engine names and outcomes only, never a login or credential.
/// </summary>
public sealed class SecretMetrics
{
    private static readonly double[] LagBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

    private readonly Counter<long> _issued;
    private readonly Counter<long> _ended;
    private readonly Counter<long> _failures;
    private readonly Histogram<double> _cleanupLag;
    private long _live;

    public SecretMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(BrokerMetrics.MeterName, typeof(BrokerMetrics).Assembly.GetName().Version?.ToString());
        _issued = meter.CreateCounter<long>("broker.secret.leases.issued", unit: "{lease}", description: "Downstream credentials handed out, by engine.");
        _ended = meter.CreateCounter<long>("broker.secret.leases.ended", unit: "{lease}", description: "Leases ended by this node (login dropped, sessions terminated), by engine and reason.");
        _failures = meter.CreateCounter<long>("broker.secret.failures", unit: "{failure}", description: "Engine calls that failed, by engine and operation (create, revoke, check).");
        _cleanupLag = meter.CreateHistogram(
            "broker.secret.cleanup.lag",
            unit: "s",
            description: "From the moment a lease should end (revocation recorded, or expiry) to its login being dropped.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LagBuckets });
        meter.CreateObservableGauge("broker.secret.leases.live", () => Interlocked.Read(ref _live), unit: "{lease}", description: "Live leases in shared state, as of this node's last sweep.");
    }

    public void Issued(string engine) => _issued.Add(1, new KeyValuePair<string, object?>("engine", engine));

    public void Ended(string engine, string reason, TimeSpan lag)
    {
        _ended.Add(1, new("engine", engine), new("reason", reason));
        _cleanupLag.Record(Math.Max(0, lag.TotalSeconds), new KeyValuePair<string, object?>("engine", engine));
    }

    public void Failed(string engine, string operation) => _failures.Add(1, new("engine", engine), new("operation", operation));

    public void LiveLeases(long count) => Interlocked.Exchange(ref _live, count);
}
