using Broker.Core.Audit;

namespace Broker.Core.Tests.Audit;

/// <summary>Heads kept in memory with the same forward-only rule as the Redis store (which has its own test against a real Redis).</summary>
public sealed class InMemoryAuditHeadStore : IAuditHeadStore
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, AuditHead> _heads = new(StringComparer.Ordinal);

    public AuditHead? Read(string node)
    {
        lock (_gate)
        {
            return _heads.GetValueOrDefault(node);
        }
    }

    public Task<IReadOnlyList<AuditHead>> ReadAllAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult<IReadOnlyList<AuditHead>>([.. _heads.Values]);
        }
    }

    public Task<AuditHead?> PublishAsync(AuditHead head, bool replace, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!replace && _heads.TryGetValue(head.Node, out var stored) && (stored.Seq > head.Seq || (stored.Seq == head.Seq && stored.Hash != head.Hash)))
            {
                return Task.FromResult<AuditHead?>(stored);
            }

            _heads[head.Node] = head;
            return Task.FromResult<AuditHead?>(null);
        }
    }
}
