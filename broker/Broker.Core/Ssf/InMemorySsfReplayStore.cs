using System.Collections.Concurrent;

namespace Broker.Core.Ssf;

/// <summary>One node's received jtis (dev and single-node); expired claims are dropped as new ones arrive.</summary>
public sealed class InMemorySsfReplayStore(TimeProvider time) : ISsfReplayStore
{
    private readonly ConcurrentDictionary<string, DateTimeOffset> _seen = new(StringComparer.Ordinal);

    public ValueTask<bool> TryClaimAsync(string issuer, string jti, DateTimeOffset until, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        foreach (var (key, expiry) in _seen)
        {
            if (expiry <= now)
            {
                _seen.TryRemove(key, out _);
            }
        }

        return ValueTask.FromResult(_seen.TryAdd(issuer + "#" + jti, until));
    }

    public ValueTask ReleaseAsync(string issuer, string jti, CancellationToken cancellationToken)
    {
        _seen.TryRemove(issuer + "#" + jti, out _);
        return ValueTask.CompletedTask;
    }
}
