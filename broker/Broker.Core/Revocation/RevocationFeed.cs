using Broker.Core.Diagnostics;
using Broker.Core.Errors;
using Broker.Revocation;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Broker.Core.Revocation;

/// <summary>
/// Keeps this node's <see cref="RevocationIndex"/> current from the shared log: a full read at
/// start, then every entry after the last cursor, on each append notification and at least
/// every poll interval. The node is <em>current</em> only while a read succeeded within the
/// staleness bound and the log's epoch is present; otherwise issuance and introspection fail
/// closed. If the epoch changes, the index is rebuilt from the start.
/// </summary>
public sealed partial class RevocationFeed : BackgroundService
{
    /// <summary>The position before the first entry of a log.</summary>
    public const string StartCursor = "0";

    private const int PageSize = 1000;

    private readonly IRevocationStore _store;
    private readonly BrokerMetrics _metrics;
    private readonly RevocationOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<RevocationFeed> _logger;
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private readonly Lock _liveLock = new();
    private readonly SortedList<RevocationCursor, RevocationEntry> _live = new();
    private string? _cursor;
    private string? _epoch;
    private bool _lost;
    private bool _caughtUp;
    private volatile IssuanceFreeze? _freeze;
    private volatile IReadOnlyList<RevocationEntry> _endedBeforeLoss = [];
    private long _confirmedAtTicks;
    private DateTimeOffset _lastPrune;

    public RevocationFeed(IRevocationStore store, IOptions<RevocationOptions> options, TimeProvider time, ILogger<RevocationFeed> logger, BrokerMetrics metrics)
    {
        _metrics = metrics;
        _store = store;
        _options = options.Value;
        _time = time;
        _logger = logger;
        _store.Appended += () => _wake.Release();
    }

    public RevocationIndex Index { get; } = new();

    /// <summary>Raised after entries are applied (on the feed's thread), for WatchRevocations subscribers.</summary>
    public event Action<IReadOnlyList<RevocationEntry>>? Applied;

    /// <summary>Raised after phase moves are read (on the feed's thread): they revoke nothing, so they reach no index.</summary>
    public event Action<IReadOnlyList<PhaseMove>>? Moved;

    /// <summary>Raised when the index was rebuilt from scratch (epoch changed) or state was lost.</summary>
    public event Action? Reset;

    public string? Epoch => _epoch;

    /// <summary>The fleet-wide issuance freeze as last read from the store.</summary>
    public IssuanceFreeze? Freeze => _freeze;

    public string? Cursor => _cursor;

    public DateTimeOffset ConfirmedAt => new(Interlocked.Read(ref _confirmedAtTicks), TimeSpan.Zero);

    /// <summary>
    /// How long after its creation an entry elsewhere may still be missing here while
    /// <see cref="IsCurrent"/> holds: the staleness bound plus the clock skew between nodes.
    /// </summary>
    public TimeSpan ArrivalBound => _options.StalenessBound + _options.ClockSkew;

    public bool IsCurrent => !_lost && _epoch is not null && _time.GetUtcNow() - ConfirmedAt <= _options.StalenessBound;

    /// <summary>Throws UNAVAILABLE unless this node can vouch for its revocation state right now.</summary>
    public void EnsureCurrent()
    {
        if (_lost)
        {
            throw BrokerErrors.Unavailable(BrokerErrors.RevocationStateLost, "Revocation state was lost (Redis came back empty); an operator must restore the revocation epoch. Everything is refused until then.");
        }

        if (!IsCurrent)
        {
            throw BrokerErrors.Unavailable(BrokerErrors.RevocationStateUnknown, "This node cannot confirm it knows every revocation; refusing until it can.");
        }
    }

    /// <summary>
    /// For issuance: throws unless this node is current (<see cref="EnsureCurrent"/>) and no
    /// responder has frozen issuance. The freeze travels with the revocation state, so it reaches
    /// every node within the same bound.
    /// </summary>
    public void EnsureIssuanceAllowed()
    {
        EnsureCurrent();
        if (_freeze is { } freeze)
        {
            throw BrokerErrors.Unavailable(BrokerErrors.IssuanceFrozen, $"Issuance is frozen fleet-wide since {freeze.Since:u} by {freeze.Actor}: {freeze.Reason}");
        }
    }

    /// <summary>
    /// Every task revocation (ended or revoked task) this node knows: those in force now and those
    /// it held when it saw the store lose its data, so a restore can carry them into the new epoch.
    /// An empty Redis forgot the tasks' ended marks with everything else, and only a revocation
    /// keeps them refused. (A node may be asked to restore before its own feed noticed the loss:
    /// then what it holds now is what it knew before.)
    /// </summary>
    public IReadOnlyList<RevocationEntry> TaskRevocationsKnown()
    {
        lock (_liveLock)
        {
            return [.. _endedBeforeLoss.Concat(_live.Values.Where(e => e.Selector.Kind == RevocationKind.Task)).DistinctBy(e => e.Id)];
        }
    }

    /// <summary>The revocations in force, in log order (for snapshots).</summary>
    public IReadOnlyList<RevocationEntry> LiveEntries()
    {
        lock (_liveLock)
        {
            return [.. _live.Values];
        }
    }

    /// <summary>Reads the log now; true when the node is current afterwards.</summary>
    public async Task<bool> SyncAsync(CancellationToken cancellationToken)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            while (true)
            {
                started = System.Diagnostics.Stopwatch.GetTimestamp();
                RevocationPage page;
                using (BrokerActivity.Source.StartActivity("broker.state revocation.read", System.Diagnostics.ActivityKind.Client))
                {
                    page = await _store.ReadAfterAsync(_cursor, PageSize, cancellationToken);
                }

                _metrics.StateCall("revocation.read", succeeded: true, System.Diagnostics.Stopwatch.GetElapsedTime(started));
                if (page.Epoch is null)
                {
                    if (!_lost)
                    {
                        Log.StateLost(_logger);
                        _lost = true;
                        KeepEndedTasks();
                        ClearAll();
                    }

                    return false;
                }

                if (!string.Equals(page.Epoch, _epoch, StringComparison.Ordinal))
                {
                    if (_epoch is not null || _lost)
                    {
                        Log.EpochChanged(_logger, page.Epoch);
                    }

                    ClearAll();
                    _epoch = page.Epoch;
                    _lost = false;
                    _endedBeforeLoss = [];
                    if (_cursor is not null)
                    {
                        _cursor = null;
                        continue;
                    }
                }

                ApplyPage(page.Entries);
                if (page.LastId is { } last)
                {
                    _cursor = last;
                }

                if (page.Moves.Count > 0)
                {
                    Moved?.Invoke(page.Moves);
                }

                _freeze = page.Freeze;
                if (page.Rows < PageSize)
                {
                    _caughtUp = true;
                    break;
                }
            }

            Interlocked.Exchange(ref _confirmedAtTicks, _time.GetUtcNow().UtcTicks);
            await PruneIfDueAsync(cancellationToken);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            _metrics.StateCall("revocation.read", succeeded: false, System.Diagnostics.Stopwatch.GetElapsedTime(started));
            Log.ReadFailed(_logger, ex);
            return false;
        }
    }

    /// <summary>Applies entries this node just appended, so it refuses them before answering the caller.</summary>
    public void ApplyLocal(IReadOnlyList<RevocationEntry> entries)
    {
        lock (_liveLock)
        {
            foreach (var entry in entries)
            {
                Index.Apply(entry);
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            await SyncAsync(stoppingToken);
            try
            {
                await _wake.WaitAsync(_options.PollInterval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            // Collapse a burst of notifications into one read.
            while (_wake.CurrentCount > 0 && _wake.Wait(0, CancellationToken.None))
            {
            }
        }
    }

    private void ApplyPage(IReadOnlyList<RevocationEntry> entries)
    {
        if (entries.Count == 0)
        {
            return;
        }

        var now = _time.GetUtcNow();
        var applied = new List<RevocationEntry>(entries.Count);

        // A read from the start (node start, epoch rebuild) replays old entries, page after
        // page: their age is not propagation lag. Only entries read once caught up count.
        var incremental = _caughtUp;
        lock (_liveLock)
        {
            foreach (var entry in entries)
            {
                if (entry.ExpiresAt <= now)
                {
                    continue;
                }

                Index.Apply(entry);
                _live[RevocationCursor.Parse(entry.Id)] = entry;
                applied.Add(entry);
                if (incremental)
                {
                    _metrics.RevocationApplied(now - entry.RevokedAt);
                }
            }
        }

        if (applied.Count > 0)
        {
            Applied?.Invoke(applied);
        }
    }

    private void KeepEndedTasks()
    {
        lock (_liveLock)
        {
            _endedBeforeLoss = [.. _endedBeforeLoss, .. _live.Values.Where(e => e.Selector.Kind == RevocationKind.Task)];
        }
    }

    private void ClearAll()
    {
        lock (_liveLock)
        {
            Index.Clear();
            _live.Clear();
            _cursor = null;
            _caughtUp = false;
        }

        Reset?.Invoke();
    }

    private async Task PruneIfDueAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        if (now - _lastPrune < TimeSpan.FromSeconds(30))
        {
            return;
        }

        _lastPrune = now;

        // Every entry expires within max token lifetime + twice the skew of being appended, so
        // older log entries can match no live token. Any node may trim; trimming twice is harmless.
        await _store.TrimAsync(now - _options.MaxTokenLifetime - _options.ClockSkew - _options.ClockSkew, cancellationToken);
        lock (_liveLock)
        {
            Index.Prune(now);
            foreach (var key in _live.Where(e => e.Value.ExpiresAt <= now).Select(e => e.Key).ToList())
            {
                _live.Remove(key);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3100, Level = LogLevel.Critical, Message = "Revocation epoch is missing: the revocation store lost its data. Refusing all issuance and introspection until an operator restores the epoch.")]
        public static partial void StateLost(ILogger logger);

        [LoggerMessage(EventId = 3101, Level = LogLevel.Warning, Message = "Revocation epoch changed to {Epoch}; rebuilding the revocation index")]
        public static partial void EpochChanged(ILogger logger, string epoch);

        [LoggerMessage(EventId = 3102, Level = LogLevel.Warning, Message = "Reading the revocation log failed; this node turns stale after the staleness bound")]
        public static partial void ReadFailed(ILogger logger, Exception exception);
    }
}

/// <summary>Orders log ids: Redis stream ids ("ms-seq") or plain sequence numbers.</summary>
public readonly record struct RevocationCursor(long Major, long Minor) : IComparable<RevocationCursor>
{
    public static RevocationCursor Parse(string id)
    {
        var dash = id.IndexOf('-', StringComparison.Ordinal);
        return dash < 0
            ? new RevocationCursor(long.Parse(id, System.Globalization.CultureInfo.InvariantCulture), 0)
            : new RevocationCursor(
                long.Parse(id.AsSpan(0, dash), System.Globalization.CultureInfo.InvariantCulture),
                long.Parse(id.AsSpan(dash + 1), System.Globalization.CultureInfo.InvariantCulture));
    }

    public static bool TryParse(string? id, out RevocationCursor cursor)
    {
        try
        {
            cursor = id is null ? default : Parse(id);
            return id is not null;
        }
        catch (FormatException)
        {
            cursor = default;
            return false;
        }
        catch (OverflowException)
        {
            cursor = default;
            return false;
        }
    }

    public int CompareTo(RevocationCursor other) => Major != other.Major ? Major.CompareTo(other.Major) : Minor.CompareTo(other.Minor);

    public static bool operator <(RevocationCursor left, RevocationCursor right) => left.CompareTo(right) < 0;

    public static bool operator >(RevocationCursor left, RevocationCursor right) => left.CompareTo(right) > 0;

    public static bool operator <=(RevocationCursor left, RevocationCursor right) => left.CompareTo(right) <= 0;

    public static bool operator >=(RevocationCursor left, RevocationCursor right) => left.CompareTo(right) >= 0;
}
