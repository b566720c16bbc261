using StackExchange.Redis;

namespace Broker.Redis;

/// <summary>How every broker connection to Redis is opened: fail closed, and fast.</summary>
public static class RedisConnectionSettings
{
    /// <summary>
    /// Parses <paramref name="configuration"/> and makes a call to an unreachable Redis fail
    /// within <paramref name="stalenessBound"/> (the documented window after which a node refuses
    /// anyway) instead of StackExchange.Redis's 5 s default: no command waits in the client's
    /// backlog for a reconnect (it fails at once, which the broker answers with UNAVAILABLE), and
    /// no call waits for a reply longer than the bound. A lower timeout in the configuration is kept.
    /// </summary>
    public static ConfigurationOptions Parse(string configuration, TimeSpan stalenessBound, string? clientName = null)
    {
        var config = ConfigurationOptions.Parse(configuration);
        config.AbortOnConnectFail = false; // start and report unhealthy; every request fails closed until Redis answers
        config.BacklogPolicy = BacklogPolicy.FailFast;
        var bound = (int)Math.Max(1, stalenessBound.TotalMilliseconds);
        config.AsyncTimeout = Math.Min(config.AsyncTimeout, bound);
        config.SyncTimeout = Math.Min(config.SyncTimeout, bound);
        if (clientName is not null)
        {
            config.ClientName = clientName;
        }

        return config;
    }
}
