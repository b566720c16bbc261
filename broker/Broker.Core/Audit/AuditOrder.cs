namespace Broker.Core.Audit;

/// <summary>
/// The order in which records from several nodes are shown and sent: each node's records in
/// <c>seq</c> order (so a reader can check the chain it was given), nodes interleaved by time.
/// A node's clock may step back; its records still never pass each other.
/// </summary>
public static class AuditOrder
{
    /// <summary>
    /// Merges the nodes' chains: repeatedly takes, among each node's next record in seq order,
    /// the one with the earliest time (ties: node id).
    /// </summary>
    public static List<AuditLine> Interleave(IEnumerable<AuditLine> records)
    {
        var chains = records
            .GroupBy(r => r.Event.Node ?? "", StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => g.OrderBy(r => r.Event.Seq ?? 0).ToList())
            .ToList();
        var next = new int[chains.Count];
        var merged = new List<AuditLine>(chains.Sum(c => c.Count));
        while (true)
        {
            var pick = -1;
            for (var i = 0; i < chains.Count; i++)
            {
                if (next[i] < chains[i].Count
                    && (pick < 0 || chains[i][next[i]].Event.Time < chains[pick][next[pick]].Event.Time))
                {
                    pick = i;
                }
            }

            if (pick < 0)
            {
                return merged;
            }

            merged.Add(chains[pick][next[pick]++]);
        }
    }
}
