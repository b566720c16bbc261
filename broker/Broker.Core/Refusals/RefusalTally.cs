namespace Broker.Core.Refusals;

/// <summary>What one aggregated record says: this many refusals for this reason from this caller, between these times.</summary>
public sealed record RefusalCount(string Door, string Peer, string? Workload, string Reason, long Count, DateTimeOffset FirstAt, DateTimeOffset LastAt);

/// <summary>
/// Counts refusals past the budget until the window closes. The number of distinct callers it
/// tracks per window is capped, so a flood from many addresses cannot grow it without bound:
/// past the cap, refusals are counted under the peer <see cref="Others"/>.
/// </summary>
internal sealed class RefusalTally(int maxCallers)
{
    /// <summary>The peer of the record that counts callers past the cap.</summary>
    public const string Others = "others";

    private readonly Lock _gate = new();
    private Dictionary<(string Door, string Peer, string? Workload, string Reason), Entry> _open = [];

    public void Add(RefusalSource source, string reason, DateTimeOffset at)
    {
        lock (_gate)
        {
            var key = (source.Door, source.Peer, source.Workload, reason);
            if (!_open.TryGetValue(key, out var entry))
            {
                if (_open.Count >= maxCallers)
                {
                    key = (source.Door, Others, null, reason);
                }

                if (!_open.TryGetValue(key, out entry))
                {
                    entry = new Entry { FirstAt = at };
                    _open[key] = entry;
                }
            }

            entry.Count++;
            entry.LastAt = at;
        }
    }

    /// <summary>Ends the window: returns what it counted and starts an empty one.</summary>
    public IReadOnlyList<RefusalCount> Close()
    {
        Dictionary<(string Door, string Peer, string? Workload, string Reason), Entry> closed;
        lock (_gate)
        {
            if (_open.Count == 0)
            {
                return [];
            }

            closed = _open;
            _open = [];
        }

        return [.. closed.Select(p => new RefusalCount(p.Key.Door, p.Key.Peer, p.Key.Workload, p.Key.Reason, p.Value.Count, p.Value.FirstAt, p.Value.LastAt))];
    }

    private sealed class Entry
    {
        public long Count { get; set; }

        public DateTimeOffset FirstAt { get; init; }

        public DateTimeOffset LastAt { get; set; }
    }
}
