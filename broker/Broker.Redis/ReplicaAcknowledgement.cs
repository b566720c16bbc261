using StackExchange.Redis;

namespace Broker.Redis;

/// <summary>
/// Writes that must survive a failover (revocations, the epoch, the freeze, approval
/// decisions) wait for replicas with Redis <c>WAIT</c> before the broker answers OK; when too
/// few acknowledge in time the call fails, so an OK never rests on the primary alone.
/// </summary>
internal static class ReplicaAcknowledgement
{
    /// <summary>Waits for <see cref="RedisRevocationOptions.MinReplicas"/> replicas to hold every write sent so far on this connection.</summary>
    public static async Task EnsureAsync(IConnectionMultiplexer redis, RedisRevocationOptions options, string what)
    {
        if (options.MinReplicas <= 0)
        {
            return;
        }

        // WAIT covers every write sent before it on the connection, which the multiplexer shares.
        var acknowledged = (long)await redis.GetDatabase().ExecuteAsync("WAIT", options.MinReplicas, (long)options.ReplicaTimeout.TotalMilliseconds);
        if (acknowledged < options.MinReplicas)
        {
            throw new RedisException($"Only {acknowledged} of {options.MinReplicas} replicas acknowledged the {what} in time.");
        }
    }
}
