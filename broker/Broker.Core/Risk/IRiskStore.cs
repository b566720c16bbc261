namespace Broker.Core.Risk;

/// <summary>
/// Current runtime risk per agent and per task, shared by every broker node. One contract suite
/// runs against every backend (in memory for --dev, Redis for production).
/// </summary>
public interface IRiskStore
{
    /// <summary>
    /// Atomically: refuses a known signal id whose content differs (<see cref="SignalApplyStatus.IdReused"/>);
    /// answers a retry of a known id without changing anything (<see cref="SignalApplyStatus.Duplicate"/>);
    /// otherwise remembers the id and, when the signal was observed strictly after the subject's
    /// current signal, its freeze and any operator clear, makes it the subject's current risk until
    /// <see cref="RiskSignal.ValidUntil"/>. A signal at or above <paramref name="containment"/>
    /// freezes the subject; a later one below it lifts the freeze. An older signal changes nothing
    /// (<see cref="SignalApplyStatus.Superseded"/>).
    /// </summary>
    /// <param name="containment">The level that freezes; null when policy turns containment off.</param>
    /// <param name="keepIdUntil">How long the id is remembered (past the signal's validity, after which a replay is refused as expired).</param>
    ValueTask<SignalApplyResult> ApplyAsync(RiskSignal signal, string digest, RiskLevel? containment, DateTimeOffset now, DateTimeOffset keepIdUntil, CancellationToken cancellationToken);

    /// <summary>The agent's and the task's current risk and freeze (each when given), in one read.</summary>
    ValueTask<RiskView> GetAsync(string? agent, string? taskId, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// An operator's clear: forgets the subject's current risk and freeze, and ignores any signal
    /// observed at or before <paramref name="now"/> until <paramref name="floorUntil"/>.
    /// Returns what was cleared.
    /// </summary>
    ValueTask<RiskState> ClearAsync(RiskSubject subject, DateTimeOffset now, DateTimeOffset floorUntil, CancellationToken cancellationToken);
}

public enum SignalApplyStatus
{
    Applied,
    Superseded,
    Duplicate,
    IdReused,
}

public enum FreezeChange
{
    None,
    Frozen,
    Lifted,
}

/// <param name="FrozenByThisSignal">For a duplicate: the subject is still frozen by this very signal (containment is re-asserted).</param>
public readonly record struct SignalApplyResult(SignalApplyStatus Status, FreezeChange Freeze = FreezeChange.None, bool FrozenByThisSignal = false);

/// <summary>A subject's current risk: the latest-observed signal still valid.</summary>
public sealed record RiskRecord(string SignalId, RiskLevel Level, double Score, string Detector, DateTimeOffset ObservedAt, DateTimeOffset ValidUntil, string Source);

/// <summary>Issuance is frozen for the subject by this signal until a later signal or an operator clears it.</summary>
public sealed record FreezeRecord(string SignalId, RiskLevel Level, DateTimeOffset ObservedAt);

public sealed record RiskState(RiskRecord? Current, FreezeRecord? Freeze)
{
    public static readonly RiskState Empty = new(null, null);
}

public sealed record RiskView(RiskState Agent, RiskState Task);
