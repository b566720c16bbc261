using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace Broker.Server.OAuth;

/// <summary>
/// When each agent last asked about each of its pending approvals at this node, so a client
/// polling faster than <see cref="OAuthOptions.PollInterval"/> is told <c>slow_down</c>. Per
/// node on purpose: it sheds load, it decides nothing (the approval itself is shared state).
/// </summary>
internal sealed class ApprovalPolls(IOptions<OAuthOptions> options, TimeProvider time)
{
    private const int PruneAbove = 10_000;

    private readonly ConcurrentDictionary<(string ApprovalId, string Agent), DateTimeOffset> _last = new();

    public TimeSpan Interval { get; } = options.Value.PollInterval;

    /// <summary>Marks a poll (or the pending answer that starts the wait); false when it came too soon.</summary>
    public bool TryPoll(string approvalId, string agent)
    {
        var now = time.GetUtcNow();
        var key = (approvalId, agent);
        var tooSoon = false;
        _last.AddOrUpdate(key, now, (_, last) =>
        {
            tooSoon = now - last < Interval;
            return tooSoon ? last : now;
        });
        if (_last.Count > PruneAbove)
        {
            Prune(now);
        }

        return !tooSoon;
    }

    public void Forget(string approvalId, string agent) => _last.TryRemove((approvalId, agent), out _);

    // Approvals live 24 hours at most; a client silent for a few intervals has stopped waiting.
    private void Prune(DateTimeOffset now)
    {
        foreach (var (key, last) in _last)
        {
            if (now - last > Interval * 4)
            {
                _last.TryRemove(key, out _);
            }
        }
    }
}
