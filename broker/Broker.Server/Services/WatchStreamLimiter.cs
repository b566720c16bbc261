using System.Collections.Concurrent;
using Broker.Core.Errors;
using Broker.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Broker.Server.Services;

/// <summary>
/// Caps concurrent <c>WatchRevocations</c> streams per resource server and per node, so one
/// caller (or a leaked token) cannot hold every stream a node can serve.
/// </summary>
internal sealed class WatchStreamLimiter
{
    private readonly ConcurrentDictionary<string, int> _perCaller = new(StringComparer.Ordinal);
    private readonly ResourceServerOptions _options;
    private int _total;

    public WatchStreamLimiter(IOptions<ResourceServerOptions> options) => _options = options.Value;

    /// <summary>Streams open now at this node.</summary>
    public int Open => Volatile.Read(ref _total);

    /// <summary>Takes one stream slot for <paramref name="caller"/>, or throws RESOURCE_EXHAUSTED; dispose the lease when the stream ends.</summary>
    public IDisposable Enter(ResourceServerCaller caller)
    {
        if (Interlocked.Increment(ref _total) > _options.MaxStreams)
        {
            Interlocked.Decrement(ref _total);
            throw Exhausted("node", _options.MaxStreams);
        }

        var key = caller.Key;
        var mine = _perCaller.AddOrUpdate(key, 1, (_, n) => n + 1);
        if (mine > _options.MaxStreamsPerCaller)
        {
            Release(key);
            throw Exhausted("caller", _options.MaxStreamsPerCaller);
        }

        return new Lease(this, key);
    }

    private void Release(string key)
    {
        Interlocked.Decrement(ref _total);
        while (true)
        {
            var current = _perCaller[key];
            if (current <= 1 ? _perCaller.TryRemove(new KeyValuePair<string, int>(key, current)) : _perCaller.TryUpdate(key, current - 1, current))
            {
                return;
            }
        }
    }

    private static BrokerException Exhausted(string scope, int limit) => BrokerErrors.ResourceExhausted(
        BrokerErrors.WatchStreamsExhausted,
        scope == "caller"
            ? $"This resource server already holds {limit} revocation streams at this node; close one or share one per process."
            : $"This node already serves {limit} revocation streams; connect to another node.",
        new Dictionary<string, string> { ["limit"] = scope, ["max_streams"] = limit.ToString(System.Globalization.CultureInfo.InvariantCulture) });

    private sealed class Lease(WatchStreamLimiter owner, string key) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Release(key);
            }
        }
    }
}
