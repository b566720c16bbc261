using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Broker.Redis;

/// <summary>
/// Reads the Redis settings revocation durability depends on and warns at start-up when they
/// cannot keep a promise Broker makes ("a revocation that returned OK survives a restart").
/// Managed Redis often forbids CONFIG; then Broker says it could not check.
/// </summary>
public static partial class RedisDurabilityCheck
{
    public static async Task<IReadOnlyList<string>> ProblemsAsync(IConnectionMultiplexer redis, int minReplicas)
    {
        var problems = new List<string>();
        IDictionary<string, string> config;
        try
        {
            var server = redis.GetServers().FirstOrDefault(s => s.IsConnected && !s.IsReplica) ?? redis.GetServers().First();
            config = (await server.ConfigGetAsync("*")).ToDictionary(p => p.Key, p => p.Value, StringComparer.OrdinalIgnoreCase);
        }
        catch (Exception ex) when (ex is RedisException or RedisCommandException or TimeoutException or InvalidOperationException)
        {
            problems.Add($"BRK2000: could not read the Redis configuration ({ex.GetType().Name}); make sure AOF with appendfsync always (or replicas with WAIT) is on — see docs/revocation.md.");
            return problems;
        }

        if (!config.TryGetValue("appendonly", out var aof) || !string.Equals(aof, "yes", StringComparison.OrdinalIgnoreCase))
        {
            problems.Add("BRK2001: Redis has appendonly=no: a restart loses revocations (every node then denies everything until an operator restores the revocation epoch). Set appendonly yes.");
        }

        if (config.TryGetValue("appendfsync", out var fsync) && !string.Equals(fsync, "always", StringComparison.OrdinalIgnoreCase) && minReplicas == 0)
        {
            problems.Add($"BRK2002: Redis has appendfsync={fsync} and Broker waits for no replica: a revocation acknowledged in the last second can be lost in a crash. Use appendfsync always, or replicas with Broker:RevocationMinReplicas.");
        }

        if (minReplicas > 0 && config.TryGetValue("min-replicas-to-write", out var minWrite) && minWrite == "0")
        {
            problems.Add("BRK2003: Redis has min-replicas-to-write=0: a primary cut off from its replicas keeps accepting writes that a failover will drop. Set it to at least 1.");
        }

        if (config.TryGetValue("maxmemory-policy", out var eviction) && !string.Equals(eviction, "noeviction", StringComparison.OrdinalIgnoreCase))
        {
            problems.Add($"BRK2004: Redis has maxmemory-policy={eviction}: under memory pressure it may evict revocations or the revocation epoch. Set noeviction.");
        }

        return problems;
    }

    public static async Task WarnAsync(IConnectionMultiplexer redis, int minReplicas, ILogger logger)
    {
        foreach (var problem in await ProblemsAsync(redis, minReplicas))
        {
            Log.Durability(logger, problem);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2000, Level = LogLevel.Warning, Message = "{Problem}")]
        public static partial void Durability(ILogger logger, string problem);
    }
}
