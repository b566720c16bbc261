using Broker.Core.Risk;
using Google.Protobuf.WellKnownTypes;
using WireLevel = Broker.V1.RiskLevel;

namespace Broker.Server.Services;

/// <summary>Maps risk between the wire contract and the domain.</summary>
internal static class RiskWire
{
    /// <summary>The domain's level name, or the raw number for a value the domain refuses (SIGNAL_LEVEL_UNKNOWN).</summary>
    public static string ToName(WireLevel level) => level switch
    {
        WireLevel.None => "none",
        WireLevel.Low => "low",
        WireLevel.Medium => "medium",
        WireLevel.High => "high",
        WireLevel.Critical => "critical",
        _ => ((int)level).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    public static WireLevel ToWire(RiskLevel level) => level switch
    {
        RiskLevel.None => WireLevel.None,
        RiskLevel.Low => WireLevel.Low,
        RiskLevel.Medium => WireLevel.Medium,
        RiskLevel.High => WireLevel.High,
        RiskLevel.Critical => WireLevel.Critical,
        _ => WireLevel.Unspecified,
    };

    public static WireLevel ToWire(string level) => RiskLevels.TryParse(level, out var parsed) ? ToWire(parsed) : WireLevel.Unspecified;

    public static Broker.V1.RiskRecord? ToWire(RiskRecord? record) => record is null ? null : new Broker.V1.RiskRecord
    {
        SignalId = record.SignalId,
        Level = ToWire(record.Level),
        Score = record.Score,
        Detector = record.Detector,
        ObservedAt = Timestamp.FromDateTimeOffset(record.ObservedAt),
        ValidUntil = Timestamp.FromDateTimeOffset(record.ValidUntil),
        Source = record.Source,
    };

    public static Broker.V1.RiskFreeze? ToWire(FreezeRecord? freeze) => freeze is null ? null : new Broker.V1.RiskFreeze
    {
        SignalId = freeze.SignalId,
        Level = ToWire(freeze.Level),
        ObservedAt = Timestamp.FromDateTimeOffset(freeze.ObservedAt),
    };

    public static Broker.V1.TelemetrySignal ToWire(TelemetryRecord record) => new()
    {
        SignalId = record.SignalId,
        Agent = record.Agent,
        TaskId = record.TaskId ?? "",
        Level = ToWire(record.Level),
        Score = record.Score,
        Detector = record.Detector,
        EvidenceRef = record.EvidenceRef ?? "",
        ObservedAt = Timestamp.FromDateTimeOffset(record.ObservedAt),
        ValidUntil = Timestamp.FromDateTimeOffset(record.ValidUntil),
        Source = record.Source,
        ReceivedAt = Timestamp.FromDateTimeOffset(record.ReceivedAt),
        Outcome = record.Outcome,
    };

    public static Broker.V1.SignalOutcome ToWire(SignalApplyStatus status) => status switch
    {
        SignalApplyStatus.Applied => Broker.V1.SignalOutcome.Applied,
        SignalApplyStatus.Superseded => Broker.V1.SignalOutcome.Superseded,
        SignalApplyStatus.Duplicate => Broker.V1.SignalOutcome.Duplicate,
        _ => Broker.V1.SignalOutcome.Unspecified,
    };
}
