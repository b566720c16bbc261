using StackExchange.Redis;

namespace Broker.Redis;

/// <summary>
/// Writes that must survive a failover (revocations, the epoch, the freeze, approval requests
/// and decisions) are answered OK only once <see cref="RedisRevocationOptions.MinReplicas"/>
/// replicas hold them (Redis <c>WAIT</c>). They go through a connection of their own: WAIT blocks
/// the connection it runs on, and covers only the writes sent on it, so sharing the node's
/// multiplexed connection would stall every other call while a replica lags, and a reconnect
/// between the write and the WAIT would confirm nothing. A reconnect in that gap is reported as
/// unconfirmed.
/// </summary>
public sealed class RedisDurableWrites : IDisposable
{
    private readonly RedisRevocationOptions _options;
    private readonly IConnectionMultiplexer _connection;
    private readonly bool _ownsConnection;
    private long _connectionEvents;

    /// <param name="shared">The node's connection, used as is when no replica is awaited.</param>
    /// <param name="connectDedicated">Opens the dedicated connection (same configuration) when replicas are awaited.</param>
    public RedisDurableWrites(IConnectionMultiplexer shared, RedisRevocationOptions options, Func<IConnectionMultiplexer>? connectDedicated = null)
    {
        _options = options;
        _ownsConnection = options.MinReplicas > 0 && connectDedicated is not null;
        _connection = _ownsConnection ? connectDedicated!() : shared;
        _connection.ConnectionFailed += OnConnectionEvent;
        _connection.ConnectionRestored += OnConnectionEvent;
    }

    /// <summary>Runs <paramref name="write"/> on the durable connection and waits for replicas; throws <see cref="ReplicationUnconfirmedException"/> (carrying the write's result) when they do not confirm.</summary>
    public async Task<T> WriteAsync<T>(string what, Func<IDatabase, Task<T>> write)
    {
        var before = Interlocked.Read(ref _connectionEvents);
        var result = await write(_connection.GetDatabase());
        if (_options.MinReplicas <= 0)
        {
            return result;
        }

        var acknowledged = (long)await _connection.GetDatabase().ExecuteAsync("WAIT", _options.MinReplicas, (long)_options.ReplicaTimeout.TotalMilliseconds);
        if (acknowledged < _options.MinReplicas || Interlocked.Read(ref _connectionEvents) != before)
        {
            throw new ReplicationUnconfirmedException(
                $"The {what} was written, but only {acknowledged} of {_options.MinReplicas} replicas confirmed it in time (or the connection changed meanwhile).",
                result);
        }

        return result;
    }

    public void Dispose()
    {
        _connection.ConnectionFailed -= OnConnectionEvent;
        _connection.ConnectionRestored -= OnConnectionEvent;
        if (_ownsConnection)
        {
            _connection.Dispose();
        }
    }

    private void OnConnectionEvent(object? sender, ConnectionFailedEventArgs e) => Interlocked.Increment(ref _connectionEvents);
}

/// <summary>
/// A durable write reached the primary but not enough replicas in time: it is in force now and
/// may be lost in a failover. <see cref="Result"/> is what the write returned.
/// </summary>
public sealed class ReplicationUnconfirmedException(string message, object? result) : RedisException(message)
{
    public object? Result { get; } = result;
}
