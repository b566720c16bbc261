namespace Broker.ResourceServer.Internal;

/// <summary>
/// The <c>jti</c>s of DPoP proofs this instance accepted, each kept until its proof could no
/// longer be accepted anyway; lapsed entries are dropped as new ones arrive.
/// </summary>
internal sealed class DpopReplayCache(TimeProvider time)
{
    private const int SweepEvery = 1024;

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, DateTimeOffset> _seen = new(StringComparer.Ordinal);
    private int _claims;

    public bool TryClaim(string key, DateTimeOffset keepUntil)
    {
        var now = time.GetUtcNow();
        if (Interlocked.Increment(ref _claims) % SweepEvery == 0)
        {
            foreach (var (seen, until) in _seen)
            {
                if (until < now)
                {
                    _seen.TryRemove(seen, out _);
                }
            }
        }

        return _seen.TryAdd(key, keepUntil) || (_seen.TryGetValue(key, out var until2) && until2 < now && _seen.TryUpdate(key, keepUntil, until2));
    }
}
