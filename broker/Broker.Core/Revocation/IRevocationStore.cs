using Broker.Revocation;

namespace Broker.Core.Revocation;

/// <summary>
/// The shared, durable revocation log. Entries are ordered; each has an id usable as a cursor.
/// An epoch marks the log as intact: a store that lost its data has no epoch, and then nothing
/// can be trusted until an operator restores one.
/// </summary>
public interface IRevocationStore
{
    /// <summary>
    /// Appends entries and returns them with their ids, only once durable (and acknowledged by
    /// the configured replicas). Throws <see cref="RevocationStateLostException"/> without an epoch.
    /// </summary>
    Task<IReadOnlyList<RevocationEntry>> AppendAsync(IReadOnlyList<RevocationDraft> drafts, CancellationToken cancellationToken);

    /// <summary>
    /// Appends a <see cref="PhaseMove"/> to the log, durable as a revocation is. It revokes nothing;
    /// a node that reads it stops deciding that task's old phase from memory.
    /// </summary>
    Task AnnounceAsync(PhaseMove move, CancellationToken cancellationToken);

    /// <summary>Entries after <paramref name="afterId"/> (null: from the start), at most <paramref name="max"/>, and the current epoch (null when lost).</summary>
    Task<RevocationPage> ReadAfterAsync(string? afterId, int max, CancellationToken cancellationToken);

    /// <summary>
    /// Writes a new epoch and appends <paramref name="cutoff"/>, then <paramref name="carried"/>
    /// (revocations known from before the loss), in the same step.
    /// </summary>
    Task<(string Epoch, RevocationEntry Cutoff)> RestoreEpochAsync(RevocationDraft cutoff, IReadOnlyList<RevocationDraft> carried, CancellationToken cancellationToken);

    /// <summary>Sets (or, with null, lifts) the fleet-wide issuance freeze; durable before it returns.</summary>
    Task SetFreezeAsync(IssuanceFreeze? freeze, CancellationToken cancellationToken);

    /// <summary>Drops entries appended before <paramref name="olderThan"/>; they can no longer match a live token.</summary>
    Task TrimAsync(DateTimeOffset olderThan, CancellationToken cancellationToken);

    /// <summary>Raised (on any thread) when another node may have appended; a hint to read now, never the data itself.</summary>
    event Action? Appended;
}

/// <summary>A revocation not yet in the log.</summary>
public sealed record RevocationDraft(RevocationSelector Selector, string Actor, string Reason, DateTimeOffset RevokedAt, DateTimeOffset ExpiresAt);

/// <param name="Freeze">The fleet-wide issuance freeze in force, if any.</param>
/// <param name="Moves">The phase moves announced among the same rows.</param>
/// <param name="LastId">The id of the last row read, revocation or move (the next cursor); null when none was read.</param>
/// <param name="Rows">How many rows were read, revocations and moves together.</param>
public sealed record RevocationPage(IReadOnlyList<RevocationEntry> Entries, string? Epoch, IssuanceFreeze? Freeze, IReadOnlyList<PhaseMove> Moves, string? LastId, int Rows);

/// <summary>
/// A task left <paramref name="PhaseLeft"/> and that phase's tokens stay valid
/// (<c>keep_tokens_on_exit</c>), so no revocation says so. Every node that decides repeat
/// issuances from memory must hear of the move all the same; the mover announces it on the
/// revocation log, whose reads every node already makes within the staleness bound.
/// </summary>
public sealed record PhaseMove(string TaskId, string PhaseLeft, DateTimeOffset At);

/// <summary>Break glass: all issuance refused fleet-wide until lifted.</summary>
public sealed record IssuanceFreeze(string Actor, string Reason, DateTimeOffset Since);

/// <summary>The store has no epoch: its data was lost, so what was revoked is unknown.</summary>
public sealed class RevocationStateLostException() : Exception("The revocation epoch is missing: revocation state was lost.");

/// <summary>
/// The revocations were appended and are in force, but the configured replicas did not confirm
/// them in time: a failover could lose them. <see cref="Entries"/> are what was appended.
/// </summary>
public sealed class RevocationUnconfirmedException(IReadOnlyList<RevocationEntry> entries)
    : Exception("The revocation was appended but replicas did not confirm it in time.")
{
    public IReadOnlyList<RevocationEntry> Entries { get; } = entries;
}
