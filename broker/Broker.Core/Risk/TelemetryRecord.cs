using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Broker.Core.Risk;

/// <summary>
/// What the runtime-protection layer reported, as the telemetry stream keeps it. This schema is
/// separate from the audit log's on purpose: its readers (telemetry-reader role), store and
/// retention differ, and it is the only place an evidence reference is written.
/// </summary>
public sealed record TelemetryRecord(
    string SignalId,
    string Agent,
    string? TaskId,
    string Level,
    double Score,
    string Detector,
    string? EvidenceRef,
    DateTimeOffset ObservedAt,
    DateTimeOffset ValidUntil,
    string Source,
    DateTimeOffset ReceivedAt,
    string Outcome)
{
    public const int SchemaVersion = 1;

    public static TelemetryRecord From(RiskSignal signal, DateTimeOffset receivedAt, string outcome) => new(
        signal.SignalId,
        signal.Agent,
        signal.TaskId,
        signal.Level.ToWire(),
        signal.Score,
        signal.Detector,
        signal.EvidenceRef,
        signal.ObservedAt,
        signal.ValidUntil,
        signal.Source,
        receivedAt,
        outcome);

    /// <summary>One JSON object on one line (snake_case, RFC 3339 times).</summary>
    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("v", SchemaVersion);
            json.WriteString("signal_id", SignalId);
            json.WriteString("agent", Agent);
            if (TaskId is not null)
            {
                json.WriteString("task_id", TaskId);
            }

            json.WriteString("level", Level);
            json.WriteNumber("score", Score);
            json.WriteString("detector", Detector);
            if (EvidenceRef is not null)
            {
                json.WriteString("evidence_ref", EvidenceRef);
            }

            json.WriteString("observed_at", Time(ObservedAt));
            json.WriteString("valid_until", Time(ValidUntil));
            json.WriteString("source", Source);
            json.WriteString("received_at", Time(ReceivedAt));
            json.WriteString("outcome", Outcome);
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    public static TelemetryRecord FromJson(string line)
    {
        using var document = JsonDocument.Parse(line);
        var root = document.RootElement;
        string? Optional(string name) => root.TryGetProperty(name, out var value) ? value.GetString() : null;
        string Required(string name) => root.GetProperty(name).GetString() ?? throw new InvalidDataException($"{name} is null");
        DateTimeOffset At(string name) => DateTimeOffset.Parse(Required(name), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
        return new TelemetryRecord(
            Required("signal_id"),
            Required("agent"),
            Optional("task_id"),
            Required("level"),
            root.GetProperty("score").GetDouble(),
            Required("detector"),
            Optional("evidence_ref"),
            At("observed_at"),
            At("valid_until"),
            Required("source"),
            At("received_at"),
            Required("outcome"));
    }

    private static string Time(DateTimeOffset value) => value.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);
}

/// <summary>Where signals are written. Never the audit sink: see docs/risk.md.</summary>
public interface ITelemetrySink
{
    ValueTask AppendAsync(TelemetryRecord record, CancellationToken cancellationToken);
}

/// <summary>Reads the telemetry stream back for the telemetry-reader role.</summary>
public interface ITelemetryReader
{
    /// <summary>
    /// Records after <paramref name="after"/> (oldest first, at most <paramref name="limit"/>);
    /// with no cursor, the latest <paramref name="limit"/> records. The page's cursor continues it.
    /// </summary>
    ValueTask<TelemetryPage> ReadAsync(string? after, int limit, CancellationToken cancellationToken);
}

public sealed record TelemetryPage(IReadOnlyList<TelemetryRecord> Records, string? Cursor);
