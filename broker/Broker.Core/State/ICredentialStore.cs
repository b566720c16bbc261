using Broker.Core.Issuance;

namespace Broker.Core.State;

/// <summary>
/// Shared state for tasks and single-use proofs. One contract suite runs against every backend
/// (in memory for --dev, Redis for production). Issued tokens are not recorded here: the audit
/// log holds each one durably, and nothing decides on a per-token record.
/// </summary>
public interface ICredentialStore
{
    /// <summary>
    /// Raised when a connection to the store failed. What was read before may no longer hold: a
    /// failover can lose the last writes (a task claim among them), so a node must not keep
    /// deciding from what it read before (node memory closes every entry).
    /// </summary>
    event Action? Interrupted;

    /// <summary>
    /// Atomically: refuses if the task is ended or owned by another workload, stops (writing nothing)
    /// if the task would change phase without <see cref="IssuanceRecord.PhaseChangeConfirmed"/>,
    /// refuses a new task when the workload already holds <see cref="IssuanceRecord.MaxTasksPerWorkload"/>
    /// retained tasks; otherwise claims the task for the workload (first use), records its current
    /// phase and keeps the task for at least half its retention past the token's expiry. A repeat
    /// issuance for a task in the same phase with that much retention left writes nothing
    /// (the steady state of an agent refreshing its token). A <see cref="IssuanceRecord.Delegated"/> record
    /// neither checks nor moves the task's phase (a delegated token may be of a lower phase than
    /// the task's). A store whose revocation epoch is missing (it
    /// lost its data) writes nothing and throws <see cref="Revocation.RevocationStateLostException"/>.
    /// </summary>
    ValueTask<IssuanceOutcome> RecordIssuanceAsync(IssuanceRecord record, CancellationToken cancellationToken);

    /// <summary>
    /// Atomically consumes a single-use proof's id until <paramref name="keepUntil"/>: true the first
    /// time, false for a replay. Throws <see cref="Revocation.RevocationStateLostException"/> (claiming
    /// nothing) when the store lost its data, since a claim made before the loss is forgotten too.
    /// </summary>
    ValueTask<bool> ClaimProofAsync(string proofKey, DateTimeOffset keepUntil, CancellationToken cancellationToken);

    ValueTask<TaskRecord?> GetTaskAsync(string taskId, CancellationToken cancellationToken);

    /// <summary>
    /// Ends a task; idempotent (returns the first end time). With an <paramref name="owner"/>, only
    /// that workload may end it; without one (an operator's revocation) the task is ended even if
    /// it was never used, so its id cannot be claimed afterwards. Throws
    /// <see cref="Revocation.RevocationStateLostException"/> (writing nothing) when the store lost its data.
    /// </summary>
    ValueTask<EndTaskOutcome> EndTaskAsync(string taskId, string? owner, DateTimeOffset at, TimeSpan retention, CancellationToken cancellationToken);
}

public enum IssuanceStatus
{
    Recorded,
    TaskEnded,
    TaskNotOwned,

    /// <summary>A new task, but the workload already holds as many retained tasks as it may; nothing was written.</summary>
    TaskLimitReached,

    /// <summary>The task is in another phase and the record did not confirm the change; nothing was written.</summary>
    PhaseChangePending,
}

/// <param name="PreviousPhase">The task's phase before this issuance, when the task already existed.</param>
public readonly record struct IssuanceOutcome(IssuanceStatus Status, TaskPhase? PreviousPhase = null);

public enum EndTaskStatus
{
    Ended,
    AlreadyEnded,
    NotFound,
    NotOwned,
}

public readonly record struct EndTaskOutcome(EndTaskStatus Status, DateTimeOffset? EndedAt);

/// <summary>A task as the store knows it.</summary>
public sealed record TaskRecord(string TaskId, string Owner, TaskPhase Phase, DateTimeOffset CreatedAt, DateTimeOffset? EndedAt);
