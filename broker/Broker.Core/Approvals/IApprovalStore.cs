namespace Broker.Core.Approvals;

/// <summary>
/// Approval requests shared by every broker node. Every state change is one atomic step, so
/// two approvers, two waiters or two nodes racing can never double-count a vote or issue twice.
/// One contract suite runs against every backend (in memory for --dev, Redis for production).
/// </summary>
public interface IApprovalStore
{
    /// <summary>Raised on every node (best effort) after a request was approved, denied, expired or used on any node.</summary>
    event Action<string>? Changed;

    /// <summary>
    /// Stores a new pending request; it is kept (for show and audit) until <paramref name="keepUntil"/>.
    /// False when it is stored but the configured replicas did not confirm it (it may be lost in a failover).
    /// </summary>
    ValueTask<bool> CreateAsync(ApprovalRequest request, DateTimeOffset keepUntil, CancellationToken cancellationToken);

    ValueTask<ApprovalRecord?> GetAsync(string id, CancellationToken cancellationToken);

    /// <summary>Requests still pending at <paramref name="now"/>, soonest to expire first.</summary>
    ValueTask<IReadOnlyList<ApprovalRecord>> ListPendingAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken);

    /// <summary>Ids of requests still pending or approved-but-unused whose expiry has passed by <paramref name="now"/> and that nobody has marked expired yet, oldest first.</summary>
    ValueTask<IReadOnlyList<string>> ListLapsedAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken);

    /// <summary>
    /// Records <paramref name="approver"/>'s yes toward each gate in <paramref name="gates"/>
    /// (indexes into <see cref="ApprovalRequest.Gates"/>); when every gate has its quorum the
    /// request becomes approved. Refused when the approver already voted, or the request is
    /// not pending or has expired.
    /// </summary>
    ValueTask<ApprovalChange> ApproveAsync(string id, string approver, IReadOnlyList<int> gates, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Denies a pending (or approved, not yet consumed) request that has not expired.</summary>
    ValueTask<ApprovalChange> DenyAsync(string id, string approver, string reason, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Marks a pending or approved request past its expiry as expired; <see cref="ApprovalChangeStatus.Applied"/> only for the one call that did.</summary>
    ValueTask<ApprovalChange> ExpireAsync(string id, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Single use: an approved, unexpired request becomes consumed by <paramref name="tokenId"/>; only one caller ever gets <see cref="ApprovalChangeStatus.Applied"/>.</summary>
    ValueTask<ApprovalChange> ConsumeAsync(string id, string tokenId, DateTimeOffset now, CancellationToken cancellationToken);
}

public enum ApprovalChangeStatus
{
    Applied,
    NotFound,

    /// <summary>The request is not in a state that allows the change (see <see cref="ApprovalChange.Status"/>).</summary>
    WrongState,
    Expired,
    AlreadyVoted,
}

/// <param name="Status">The request's status after the call (or as found, when refused).</param>
/// <param name="Confirmed">False when the change is in force but the configured replicas did not confirm it (it may be lost in a failover).</param>
public readonly record struct ApprovalChange(ApprovalChangeStatus Outcome, ApprovalStatus? Status, bool Confirmed = true);
