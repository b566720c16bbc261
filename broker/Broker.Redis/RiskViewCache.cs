using System.Collections.Concurrent;
using Broker.Core.Risk;
using StackExchange.Redis;

namespace Broker.Redis;

/// <summary>
/// This node's copy of recently read risk views, so the risk gate on the issuance path does not
/// read Redis for every request. Any change to risk on any node is announced on a channel and
/// drops the whole copy; a read that overlapped a change is not kept (a generation check); while
/// the connection that carries announcements is down, nothing is served from the copy; and every
/// entry expires after a short bound in case an announcement was lost on reconnect.
/// </summary>
internal sealed class RiskViewCache : IDisposable
{
    /// <summary>Entries beyond this are not worth keeping: the copy is dropped and refilled.</summary>
    private const int MaxEntries = 100_000;

    private readonly ConcurrentDictionary<(string? Agent, string? Task), (RiskView View, long ReadAt)> _views = new();
    private readonly IConnectionMultiplexer _redis;
    private readonly RedisChannel _changes;
    private readonly long _maxAgeTicks;
    private readonly bool _enabled;
    private long _generation;
    private volatile bool _suspended;

    public RiskViewCache(IConnectionMultiplexer redis, RedisChannel changes, TimeSpan maxAge)
    {
        _redis = redis;
        _changes = changes;
        _maxAgeTicks = maxAge.Ticks;
        _enabled = maxAge > TimeSpan.Zero;
        if (!_enabled)
        {
            return;
        }

        redis.ConnectionFailed += OnConnectionFailed;
        redis.ConnectionRestored += OnConnectionRestored;
        redis.GetSubscriber().Subscribe(changes, (_, _) => Invalidate());
    }

    /// <summary>Taken before a read; <see cref="Keep"/> stores the result only if nothing changed since.</summary>
    public long Generation => Volatile.Read(ref _generation);

    public bool TryGet(string? agent, string? task, long nowTicks, out RiskView view)
    {
        if (Usable && _views.TryGetValue((agent, task), out var entry) && nowTicks - entry.ReadAt < _maxAgeTicks)
        {
            view = entry.View;
            return true;
        }

        view = null!;
        return false;
    }

    public void Keep(string? agent, string? task, RiskView view, long generation, long readAtTicks)
    {
        if (!Usable || generation != Generation)
        {
            return;
        }

        if (_views.Count >= MaxEntries)
        {
            _views.Clear();
        }

        _views[(agent, task)] = (view, readAtTicks);

        // A change announced while storing: drop what may predate it.
        if (generation != Generation)
        {
            _views.TryRemove((agent, task), out _);
        }
    }

    /// <summary>Announcements can reach this node: enabled, no connection failure since the last restore, connected.</summary>
    private bool Usable => _enabled && !_suspended && _redis.IsConnected;

    /// <summary>Forgets every view (a change was made here or announced from another node).</summary>
    public void Invalidate()
    {
        Interlocked.Increment(ref _generation);
        _views.Clear();
    }

    public void Dispose()
    {
        _redis.ConnectionFailed -= OnConnectionFailed;
        _redis.ConnectionRestored -= OnConnectionRestored;
    }

    private void OnConnectionFailed(object? sender, ConnectionFailedEventArgs e)
    {
        // Announcements may be lost while any connection is down: serve nothing from the copy.
        _suspended = true;
        Invalidate();
    }

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e)
    {
        Invalidate();
        _suspended = false;
    }
}
