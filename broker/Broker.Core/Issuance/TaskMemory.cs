using System.Collections.Concurrent;
using Broker.Core.Revocation;
using Broker.Revocation;

namespace Broker.Core.Issuance;

/// <summary>
/// Tasks this node has confirmed in shared state (owner and phase, as the issuance script
/// answered), so that a repeat issuance for the same task and phase is decided without a round
/// trip (<c>Broker:Issuance:RepeatFromMemory</c>). What can change a confirmed task reaches the
/// node through the revocation feed: an end or a task revocation is a <c>Task</c> entry, a
/// phase move that revokes the phase left is a <c>TaskPhase</c> entry, and a move out of a phase
/// that keeps its tokens is a <see cref="PhaseMove"/>; each forgets the task here. A feed reset
/// (epoch change or loss) forgets every task, and an entry is confirmed again after
/// <see cref="Hold"/> at the latest. An entry serves only the policy it was confirmed under (a
/// reload, or a lost connection to shared state, forgets every task). A (task, phase) the index
/// holds any revocation of, or that a move left less than <see cref="Hold"/> ago, is never
/// remembered: the mover tells the fleet before it writes the new phase, so a read racing the
/// move may be stale.
/// </summary>
/// <remarks>
/// An issuance decided from memory may race the feed: it can mint for a phase just as another
/// node moves the task on. Each remembered task records the newest token it minted, and the
/// feed closes the task before reading that; a minting issuance notes its token before it looks
/// for the close. So either the issuance sees the task closed (and asks shared state instead)
/// or the feed sees the token (and <see cref="MintedAfterPhaseRevocation"/> asks for the phase to
/// be revoked again, covering it). Every close settles the same way (<see cref="Settle"/>), and an
/// entry is evicted only once its last token is older than <see cref="RevocationFeed.ArrivalBound"/>,
/// so no revocation that should cover a token can arrive after its entry is gone.
/// </remarks>
public sealed class TaskMemory : IDisposable
{
    /// <summary>How long a confirmation is used before shared state is asked again.</summary>
    public static readonly TimeSpan Hold = TimeSpan.FromMinutes(5);

    private readonly ConcurrentDictionary<string, Remembered> _tasks = new(StringComparer.Ordinal);

    // (task, phase left) → when this node heard of the move (UTC ticks); kept for Hold.
    private readonly ConcurrentDictionary<(string TaskId, string Phase), long> _movedOut = new();
    private long _movedOutPrunedTicks;
    private readonly RevocationFeed _feed;
    private readonly TimeProvider _time;
    private readonly int _capacity;
    private long _lastScanTicks;

    // When Clear last ran: an answer to a question asked before then may predate what it reacts to.
    private long _clearedAtTicks = long.MinValue;

    // ConcurrentDictionary.Count takes every bucket lock; the capacity check runs per issuance.
    private int _entries;

    public TaskMemory(RevocationFeed feed, TimeProvider time, int capacity)
    {
        _feed = feed;
        _time = time;
        _capacity = capacity;
        _feed.Applied += OnApplied;
        _feed.Moved += OnMoved;
        _feed.Reset += OnReset;
    }

    /// <summary>
    /// Raised when a token minted from memory (the newest at the time given) is newer than a
    /// revocation of its phase that should cover it; on the feed's thread or an issuer's.
    /// </summary>
    public event Action<string, TaskPhase, DateTimeOffset>? MintedAfterPhaseRevocation;

    public int Count => Volatile.Read(ref _entries);

    /// <summary>The task as confirmed for exactly this owner and phase under this policy, or null: ask shared state.</summary>
    public Remembered? Find(string taskId, string owner, TaskPhase phase, string policyDigest)
    {
        if (!_tasks.TryGetValue(taskId, out var task) || task.IsClosed || task.Phase != phase
            || !string.Equals(task.Owner, owner, StringComparison.Ordinal)
            || !string.Equals(task.PolicyDigest, policyDigest, StringComparison.Ordinal)
            || !string.Equals(task.Epoch, _feed.Epoch, StringComparison.Ordinal)
            || _time.GetUtcNow() - task.ConfirmedAt >= Hold)
        {
            return null;
        }

        return task;
    }

    /// <summary>
    /// Remembers what shared state just confirmed, under the policy <paramref name="policyDigest"/>
    /// names. <paramref name="askedAt"/> is when the question was sent; the hold counts from it.
    /// <paramref name="keepsTokensOnExit"/>: that policy keeps the phase's tokens when the task
    /// moves on, so a move Redis reports before the feed does revokes nothing here either.
    /// </summary>
    public void Confirmed(string taskId, string owner, TaskPhase phase, DateTimeOffset askedAt, string policyDigest, bool keepsTokensOnExit = false)
    {
        if (_feed.Epoch is not { } epoch || (Count >= _capacity && !_tasks.ContainsKey(taskId) && !MakeRoom()))
        {
            return;
        }

        // The same confirmation again refreshes the entry in place, so a revocation that reaches
        // it still sees every token minted from it; one closed by a policy reload is replaced by
        // an entry that inherits its tokens. Another phase replaces it too: the task left the
        // remembered phase, whose tokens minted from memory may need revoking once more.
        var fresh = new Remembered(owner, phase, askedAt, epoch, policyDigest, keepsTokensOnExit);
        Remembered? left = null;
        var added = false;
        var current = _tasks.AddOrUpdate(taskId, _ => { added = true; return fresh; }, (_, old) =>
        {
            // May run more than once: only the attempt that wins decides what was left.
            left = null;
            added = false;
            if (old.Phase != phase || !string.Equals(old.Owner, owner, StringComparison.Ordinal) || old.Epoch != epoch)
            {
                left = old;
                return fresh;
            }

            if (!old.IsClosed && string.Equals(old.PolicyDigest, policyDigest, StringComparison.Ordinal))
            {
                old.Refresh(askedAt);
                return old;
            }

            // Closed first, read after (see the remarks): a token noted on the old entry after the
            // read saw it closed and was not minted from it.
            old.Close();
            fresh.Inherit(old.LastMintedAtMs);
            return fresh;
        });
        if (added)
        {
            Interlocked.Increment(ref _entries);
        }

        if (left is not null && !ReferenceEquals(current, left))
        {
            if (left.KeepsTokensOnExit)
            {
                Remove(taskId, left);
            }
            else
            {
                Settle(taskId, left);
            }
        }

        // After the insert, so a revocation applied meanwhile is seen here or closes the entry
        // there. Any revocation of the task or of this phase, whatever its time: the mover revokes
        // before it writes the new phase, so a read made after that revocation can still say the
        // phase left.
        if (_feed.Index.IsTaskOrPhaseRevoked(taskId, phase.ToWire(), DateTimeOffset.MinValue))
        {
            Settle(taskId, current);
        }
        else if (MovedOutRecently(taskId, phase))
        {
            // A move out of a phase that keeps its tokens: nothing to revoke again.
            Remove(taskId, current);
        }
        else if (askedAt.UtcTicks <= Interlocked.Read(ref _clearedAtTicks))
        {
            // Asked before a policy reload or a lost store connection: closed, kept as a tombstone.
            current.Close();
        }
    }

    /// <summary>
    /// A policy reload, or a lost connection to shared state. A task is confirmed again under the
    /// policy in force, so no answer outlives the rules it was given under; after a failover the
    /// new primary may have lost the task's claim. Entries are closed,
    /// not dropped, so a phase revocation arriving later is still compared with the tokens they
    /// minted; an answer to a question asked before this call is not remembered.
    /// </summary>
    public void Clear()
    {
        Interlocked.Exchange(ref _clearedAtTicks, _time.GetUtcNow().UtcTicks);
        foreach (var (_, task) in _tasks)
        {
            task.Close();
        }
    }

    /// <summary>
    /// Before this node moves the task to another phase (and revokes the one left): tokens minted
    /// from the entry until now are older than that revocation, so it covers them.
    /// </summary>
    public void Forget(string taskId)
    {
        if (_tasks.TryRemove(taskId, out var task))
        {
            Interlocked.Decrement(ref _entries);
            task.Close();
        }
    }

    public void Dispose()
    {
        _feed.Applied -= OnApplied;
        _feed.Moved -= OnMoved;
        _feed.Reset -= OnReset;
    }

    private void OnApplied(IReadOnlyList<RevocationEntry> entries)
    {
        foreach (var entry in entries)
        {
            if (entry.Selector.Kind is not (RevocationKind.Task or RevocationKind.TaskPhase)
                || !_tasks.TryGetValue(entry.Selector.Value, out var task))
            {
                continue;
            }

            if (entry.Selector.Kind == RevocationKind.TaskPhase && entry.Selector.Phase != task.Phase.ToWire())
            {
                continue;
            }

            Remove(entry.Selector.Value, task);
            if (entry.Selector.Kind == RevocationKind.TaskPhase && task.LastMintedAtMs > entry.RevokedAt.ToUnixTimeMilliseconds())
            {
                MintedAfterPhaseRevocation?.Invoke(entry.Selector.Value, task.Phase, DateTimeOffset.FromUnixTimeMilliseconds(task.LastMintedAtMs));
            }
        }
    }

    // Recorded before the lookup, as Confirmed inserts before it checks: one of the two sees the other.
    // Also called by the issuer for its own move, before it writes the new phase.
    internal void OnMoved(IReadOnlyList<PhaseMove> moves)
    {
        var now = _time.GetUtcNow().UtcTicks;
        foreach (var move in moves)
        {
            _movedOut[(move.TaskId, move.PhaseLeft)] = now;
            if (_tasks.TryGetValue(move.TaskId, out var task) && task.Phase.ToWire() == move.PhaseLeft)
            {
                // The phase left keeps its tokens: those minted from memory stay valid like the rest.
                Remove(move.TaskId, task);
            }
        }

        var pruned = Interlocked.Read(ref _movedOutPrunedTicks);
        if (now - pruned >= Hold.Ticks / 10 && Interlocked.CompareExchange(ref _movedOutPrunedTicks, now, pruned) == pruned)
        {
            foreach (var (key, heardAt) in _movedOut)
            {
                if (now - heardAt >= Hold.Ticks)
                {
                    _movedOut.TryRemove(new KeyValuePair<(string, string), long>(key, heardAt));
                }
            }
        }
    }

    // A confirmation asked more than Hold ago serves nothing, so a move heard earlier cannot race it.
    private bool MovedOutRecently(string taskId, TaskPhase phase) =>
        _movedOut.TryGetValue((taskId, phase.ToWire()), out var heardAt) && _time.GetUtcNow().UtcTicks - heardAt < Hold.Ticks;

    // An epoch change: the restore's IssuedBefore cut-off covers every token minted so far.
    private void OnReset()
    {
        foreach (var (taskId, task) in _tasks)
        {
            Remove(taskId, task);
        }
    }

    private void Remove(string taskId, Remembered task)
    {
        task.Close();
        if (_tasks.TryRemove(new KeyValuePair<string, Remembered>(taskId, task)))
        {
            Interlocked.Decrement(ref _entries);
        }
    }

    /// <summary>
    /// Closes an entry, then reads its newest token (the close comes first, see the remarks): one
    /// that no revocation of the task or phase in the index covers is revoked again. Safe to repeat.
    /// </summary>
    private void Settle(string taskId, Remembered task)
    {
        Remove(taskId, task);
        var minted = task.LastMintedAtMs;
        if (minted == long.MinValue)
        {
            return;
        }

        var at = DateTimeOffset.FromUnixTimeMilliseconds(minted);
        if (!_feed.Index.IsTaskOrPhaseRevoked(taskId, task.Phase.ToWire(), at))
        {
            MintedAfterPhaseRevocation?.Invoke(taskId, task.Phase, at);
        }
    }

    /// <summary>
    /// Drops confirmations closed or past their hold whose last token is older than the feed's arrival
    /// bound (a revocation that should cover it would have been applied, and compared, by now);
    /// false when nothing could go (the new confirmation is then not remembered).
    /// </summary>
    private bool MakeRoom()
    {
        // A full memory is scanned at most once a second, not once per new task.
        var now = _time.GetUtcNow();
        var last = Interlocked.Read(ref _lastScanTicks);
        if (now.UtcTicks - last < TimeSpan.TicksPerSecond || Interlocked.CompareExchange(ref _lastScanTicks, now.UtcTicks, last) != last)
        {
            return false;
        }

        var settledBefore = (now - _feed.ArrivalBound).ToUnixTimeMilliseconds();
        foreach (var (taskId, task) in _tasks)
        {
            if ((task.IsClosed || now - task.ConfirmedAt >= Hold) && task.LastMintedAtMs < settledBefore)
            {
                Remove(taskId, task);
            }
        }

        return Count < _capacity;
    }

    /// <summary>One confirmed task.</summary>
    public sealed class Remembered
    {
        private long _lastMintedAtMs = long.MinValue;
        private int _closed;

        private long _confirmedAtTicks;

        internal Remembered(string owner, TaskPhase phase, DateTimeOffset confirmedAt, string epoch, string policyDigest, bool keepsTokensOnExit)
        {
            KeepsTokensOnExit = keepsTokensOnExit;
            Owner = owner;
            Phase = phase;
            _confirmedAtTicks = confirmedAt.UtcTicks;
            Epoch = epoch;
            PolicyDigest = policyDigest;
        }

        public string Owner { get; }

        public TaskPhase Phase { get; }

        public DateTimeOffset ConfirmedAt => new(Interlocked.Read(ref _confirmedAtTicks), TimeSpan.Zero);

        public string Epoch { get; }

        /// <summary>The policy this was confirmed under.</summary>
        public string PolicyDigest { get; }

        /// <summary>Under that policy, the phase's tokens stay valid when the task moves on.</summary>
        public bool KeepsTokensOnExit { get; }

        /// <summary>Forgotten: a revocation or reset reached the node after this was looked up.</summary>
        public bool IsClosed => Volatile.Read(ref _closed) != 0;

        internal long LastMintedAtMs => Interlocked.Read(ref _lastMintedAtMs);

        /// <summary>Notes a token minted from this confirmation; call before checking <see cref="IsClosed"/>.</summary>
        public void NoteMinted(DateTimeOffset issuedAt)
        {
            Inherit(issuedAt.ToUnixTimeMilliseconds());

            // Full fence (Interlocked in Inherit): the close check that follows cannot move before the note.
            Interlocked.MemoryBarrier();
        }

        /// <summary>Takes on the newest token of an entry this one replaces (unix ms; <see cref="long.MinValue"/> for none).</summary>
        internal void Inherit(long mintedAtMs)
        {
            var seen = Interlocked.Read(ref _lastMintedAtMs);
            while (mintedAtMs > seen)
            {
                var was = Interlocked.CompareExchange(ref _lastMintedAtMs, mintedAtMs, seen);
                if (was == seen)
                {
                    break;
                }

                seen = was;
            }
        }

        internal void Close() => Interlocked.Exchange(ref _closed, 1);

        internal void Refresh(DateTimeOffset confirmedAt) => Interlocked.Exchange(ref _confirmedAtTicks, confirmedAt.UtcTicks);
    }
}
