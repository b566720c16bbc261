using System.Security.Cryptography;
using System.Text;

namespace Broker.Core.Risk;

/// <summary>
/// One report from the runtime-protection layer about an agent, or about one of its tasks.
/// <see cref="EvidenceRef"/> points at the detector's evidence; it goes to the telemetry stream
/// and nowhere else (never the audit log, never a log line, never an error message).
/// </summary>
public sealed record RiskSignal(
    string SignalId,
    string Agent,
    string? TaskId,
    RiskLevel Level,
    double Score,
    string Detector,
    string? EvidenceRef,
    DateTimeOffset ObservedAt,
    DateTimeOffset ValidUntil,
    string Source)
{
    /// <summary>What the signal is about: its task when it names one, else its agent.</summary>
    public RiskSubject Subject => TaskId is null ? RiskSubject.ForAgent(Agent) : RiskSubject.ForTask(TaskId);

    /// <summary>
    /// SHA-256 over every field: a repeated id with the same content is a retry (idempotent); a
    /// repeated id with other content is refused.
    /// </summary>
    public string Digest()
    {
        var text = string.Join(
            '\u001f',
            SignalId,
            Agent,
            TaskId ?? "",
            Level.ToWire(),
            Score.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
            Detector,
            EvidenceRef ?? "",
            ObservedAt.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ValidUntil.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture),
            Source);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
    }
}

public enum RiskSubjectKind
{
    Agent,
    Task,
}

/// <summary>An agent (workload id) or a task id: the two things risk is kept for.</summary>
public readonly record struct RiskSubject(RiskSubjectKind Kind, string Id)
{
    public static RiskSubject ForAgent(string workloadId) => new(RiskSubjectKind.Agent, workloadId);

    public static RiskSubject ForTask(string taskId) => new(RiskSubjectKind.Task, taskId);

    public override string ToString() => (Kind == RiskSubjectKind.Agent ? "agent " : "task ") + Id;
}
