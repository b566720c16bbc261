namespace Broker.Core.Ssf.Transmitter;

/// <summary>
/// The fleet's streams and their undelivered SETs, shared by every node so any node serves a
/// receiver and nothing is lost when one restarts. A SET stays queued until the receiver
/// acknowledges it (poll: <c>ack</c>; push: a 2xx), ages past the retention, or is pushed out
/// by a full queue (oldest first).
/// </summary>
public interface ISsfStreamStore
{
    /// <summary>Stores a new stream with its revocation cursor at the start; false when a cap is reached (<paramref name="perOwner"/> or <paramref name="total"/>).</summary>
    Task<SsfCreateResult> CreateAsync(SsfStream stream, int perOwner, int total, CancellationToken cancellationToken);

    /// <summary>The stream, or null when it does not exist or belongs to someone else.</summary>
    Task<SsfStream?> GetAsync(string owner, string streamId, CancellationToken cancellationToken);

    Task<IReadOnlyList<SsfStream>> ListAsync(string owner, CancellationToken cancellationToken);

    /// <summary>Every stream with its cursor: the last revocation log id queued on it.</summary>
    Task<IReadOnlyList<(SsfStream Stream, string Cursor)>> ListAllAsync(CancellationToken cancellationToken);

    /// <summary>Replaces the receiver-supplied part of a stream; false when it does not exist or belongs to someone else.</summary>
    Task<bool> UpdateAsync(SsfStream stream, CancellationToken cancellationToken);

    /// <summary>Deletes the stream and its queue; false when it does not exist or belongs to someone else.</summary>
    Task<bool> DeleteAsync(string owner, string streamId, CancellationToken cancellationToken);

    /// <summary>
    /// Queues the SETs of revocation log entries, in order, each only if its log id is past the
    /// stream's cursor, and moves the cursor: atomic, so when several nodes offer the same entry
    /// exactly one SET is queued. An event with a null SET only moves the cursor (a type the
    /// stream does not deliver). Returns how many were queued and how many old ones a full
    /// queue dropped for them (<see cref="SsfEnqueued.Gone"/> when the stream is gone).
    /// </summary>
    Task<SsfEnqueued> EnqueueRevocationsAsync(string streamId, IReadOnlyList<SsfQueuedRevocation> events, SsfQueueLimits limits, CancellationToken cancellationToken);

    /// <summary>Queues one SET outside the revocation order (a verification event).</summary>
    Task<SsfEnqueued> EnqueueAsync(string streamId, string jti, string set, SsfQueueLimits limits, CancellationToken cancellationToken);

    /// <summary>The oldest queued SETs, at most <paramref name="max"/>, after dropping those past the retention.</summary>
    Task<SsfPending> PendingAsync(string streamId, int max, SsfQueueLimits limits, CancellationToken cancellationToken);

    /// <summary>Removes acknowledged SETs by <c>jti</c>; unknown ones are ignored. Returns how many were removed.</summary>
    Task<int> AcknowledgeAsync(string streamId, IReadOnlyCollection<string> jtis, CancellationToken cancellationToken);

    /// <summary>
    /// Takes (or renews) the right to push a stream's SETs for <paramref name="lease"/>: one node
    /// at a time, by an atomic set-if-absent-or-mine, so two nodes never push the same stream.
    /// </summary>
    Task<bool> TryLeasePushAsync(string streamId, string node, TimeSpan lease, CancellationToken cancellationToken);

    /// <summary>Raised (on any thread, at any node) when SETs were queued on a stream: its id. A hint for long polls, never the data.</summary>
    event Action<string>? Enqueued;
}

public enum SsfCreateResult
{
    Created,
    OwnerLimitReached,
    LimitReached,
}

/// <summary>What one enqueue did: SETs queued, and the oldest SETs a full queue dropped to make room.</summary>
public sealed record SsfEnqueued(int Added, int Dropped, bool Gone = false);

/// <summary>One revocation offered to a stream: its log id (the cursor), the SET's <c>jti</c> and the SET (null: skip, move the cursor).</summary>
public sealed record SsfQueuedRevocation(string LogId, string Jti, string? Set);

/// <summary>How much a queue holds: at most <paramref name="MaxEvents"/>, none older than <paramref name="Retention"/>.</summary>
public sealed record SsfQueueLimits(int MaxEvents, TimeSpan Retention, DateTimeOffset Now);

/// <summary>Queued SETs, oldest first, and whether more wait behind them.</summary>
public sealed record SsfPending(IReadOnlyList<(string Jti, string Set)> Events, bool MoreAvailable);
