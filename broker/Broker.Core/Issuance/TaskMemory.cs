using System.Collections.Concurrent;
using Broker.Core.Revocation;
using Broker.Revocation;

namespace Broker.Core.Issuance;

/// <summary>
/// Tasks this node has confirmed in shared state (owner and phase, as the issuance script
/// answered), so that a repeat issuance for the same task and phase is decided without a round
/// trip (<c>Broker:Issuance:RepeatFromMemory</c>). What can change a confirmed task reaches the
/// node through the revocation feed: an end or a task revocation is a <c>Task</c> entry, and a
/// phase move that revokes the phase left is a <c>TaskPhase</c> entry; either forgets the task
/// here. A feed reset (epoch change or loss) forgets every task, and an entry is confirmed again
/// after <see cref="Hold"/> at the latest. Phases whose rule keeps tokens on exit are never
/// remembered (their moves leave no trace in the feed); the issuer checks that with the policy
/// in force.
/// </summary>
/// <remarks>
/// An issuance decided from memory may race the feed: it can mint for a phase just as another
/// node moves the task on. Each remembered task records the newest token it minted, and the
/// feed closes the task before reading that; a minting issuance notes its token before it looks
/// for the close. So either the issuance sees the task closed (and asks shared state instead)
/// or the feed sees the token (and <see cref="MintedAfterPhaseRevocation"/> asks for the phase to
/// be revoked again, covering it).
/// </remarks>
public sealed class TaskMemory : IDisposable
{
    /// <summary>How long a confirmation is used before shared state is asked again.</summary>
    public static readonly TimeSpan Hold = TimeSpan.FromMinutes(5);

    private readonly ConcurrentDictionary<string, Remembered> _tasks = new(StringComparer.Ordinal);
    private readonly RevocationFeed _feed;
    private readonly TimeProvider _time;
    private readonly int _capacity;
    private long _lastScanTicks;

    public TaskMemory(RevocationFeed feed, TimeProvider time, int capacity)
    {
        _feed = feed;
        _time = time;
        _capacity = capacity;
        _feed.Applied += OnApplied;
        _feed.Reset += OnReset;
    }

    /// <summary>Raised (on the feed's thread) when a token minted from memory is newer than a phase revocation that should cover it.</summary>
    public event Action<string, TaskPhase>? MintedAfterPhaseRevocation;

    public int Count => _tasks.Count;

    /// <summary>The task as confirmed for exactly this owner and phase, or null: ask shared state.</summary>
    public Remembered? Find(string taskId, string owner, TaskPhase phase)
    {
        if (!_tasks.TryGetValue(taskId, out var task) || task.IsClosed || task.Phase != phase
            || !string.Equals(task.Owner, owner, StringComparison.Ordinal)
            || !string.Equals(task.Epoch, _feed.Epoch, StringComparison.Ordinal)
            || _time.GetUtcNow() - task.ConfirmedAt >= Hold)
        {
            return null;
        }

        return task;
    }

    /// <summary>
    /// Remembers what shared state just confirmed. <paramref name="askedAt"/> is when the
    /// question was sent: a revocation of the task or phase the feed applied since then means the
    /// answer may be stale already, so it is not remembered.
    /// </summary>
    public void Confirmed(string taskId, string owner, TaskPhase phase, DateTimeOffset askedAt)
    {
        if (_feed.Epoch is not { } epoch || (_tasks.Count >= _capacity && !MakeRoom()))
        {
            return;
        }

        // The same confirmation again refreshes the entry in place, so a revocation that reaches
        // it still sees every token minted from it. Another phase replaces it: the task left the
        // remembered phase, whose tokens minted from memory may need revoking once more.
        var fresh = new Remembered(owner, phase, askedAt, epoch);
        Remembered? left = null;
        var current = _tasks.AddOrUpdate(taskId, fresh, (_, old) =>
        {
            if (!old.IsClosed && old.Phase == phase && string.Equals(old.Owner, owner, StringComparison.Ordinal) && old.Epoch == epoch)
            {
                old.Refresh(askedAt);
                return old;
            }

            left = old;
            return fresh;
        });
        if (left is not null && !ReferenceEquals(current, left))
        {
            Left(taskId, left);
        }

        // After the insert, so a revocation applied meanwhile is seen here or closes the entry there.
        if (_feed.Index.IsRevoked(new TokenFacts("", owner, taskId, phase.ToWire(), askedAt), out var kind)
            && kind is RevocationKind.Task or RevocationKind.TaskPhase)
        {
            Forget(taskId, current);
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
            task.Close();
        }
    }

    public void Dispose()
    {
        _feed.Applied -= OnApplied;
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

            Forget(entry.Selector.Value, task);
            if (entry.Selector.Kind == RevocationKind.TaskPhase && task.LastMintedAtMs > entry.RevokedAt.ToUnixTimeMilliseconds())
            {
                MintedAfterPhaseRevocation?.Invoke(entry.Selector.Value, task.Phase);
            }
        }
    }

    private void OnReset()
    {
        foreach (var (taskId, task) in _tasks)
        {
            Forget(taskId, task);
        }
    }

    private void Forget(string taskId, Remembered task)
    {
        task.Close();
        _tasks.TryRemove(new KeyValuePair<string, Remembered>(taskId, task));
    }

    /// <summary>A replaced entry of another phase: any token minted from it that no revocation in the index covers is revoked again.</summary>
    private void Left(string taskId, Remembered old)
    {
        old.Close();
        var minted = old.LastMintedAtMs;
        if (minted == long.MinValue)
        {
            return;
        }

        var covered = _feed.Index.IsRevoked(new TokenFacts("", old.Owner, taskId, old.Phase.ToWire(), DateTimeOffset.FromUnixTimeMilliseconds(minted)), out var kind)
            && kind is RevocationKind.Task or RevocationKind.TaskPhase;
        if (!covered)
        {
            MintedAfterPhaseRevocation?.Invoke(taskId, old.Phase);
        }
    }

    /// <summary>Drops confirmations past their hold; false when every entry is still fresh (the new one is then not remembered).</summary>
    private bool MakeRoom()
    {
        // A full memory is scanned at most once a second, not once per new task.
        var now = _time.GetUtcNow();
        var last = Interlocked.Read(ref _lastScanTicks);
        if (now.UtcTicks - last < TimeSpan.TicksPerSecond || Interlocked.CompareExchange(ref _lastScanTicks, now.UtcTicks, last) != last)
        {
            return false;
        }

        foreach (var (taskId, task) in _tasks)
        {
            if (now - task.ConfirmedAt >= Hold)
            {
                Forget(taskId, task);
            }
        }

        return _tasks.Count < _capacity;
    }

    /// <summary>One confirmed task.</summary>
    public sealed class Remembered
    {
        private long _lastMintedAtMs = long.MinValue;
        private int _closed;

        private long _confirmedAtTicks;

        internal Remembered(string owner, TaskPhase phase, DateTimeOffset confirmedAt, string epoch)
        {
            Owner = owner;
            Phase = phase;
            _confirmedAtTicks = confirmedAt.UtcTicks;
            Epoch = epoch;
        }

        public string Owner { get; }

        public TaskPhase Phase { get; }

        public DateTimeOffset ConfirmedAt => new(Interlocked.Read(ref _confirmedAtTicks), TimeSpan.Zero);

        public string Epoch { get; }

        /// <summary>Forgotten: a revocation or reset reached the node after this was looked up.</summary>
        public bool IsClosed => Volatile.Read(ref _closed) != 0;

        internal long LastMintedAtMs => Interlocked.Read(ref _lastMintedAtMs);

        /// <summary>Notes a token minted from this confirmation; call before checking <see cref="IsClosed"/>.</summary>
        public void NoteMinted(DateTimeOffset issuedAt)
        {
            var at = issuedAt.ToUnixTimeMilliseconds();
            var seen = Interlocked.Read(ref _lastMintedAtMs);
            while (at > seen)
            {
                var was = Interlocked.CompareExchange(ref _lastMintedAtMs, at, seen);
                if (was == seen)
                {
                    break;
                }

                seen = was;
            }

            // Full fence (Interlocked above): the close check that follows cannot move before the note.
            Interlocked.MemoryBarrier();
        }

        internal void Close() => Interlocked.Exchange(ref _closed, 1);

        internal void Refresh(DateTimeOffset confirmedAt) => Interlocked.Exchange(ref _confirmedAtTicks, confirmedAt.UtcTicks);
    }
}
