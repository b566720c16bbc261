namespace Broker.Core.Secrets;

/// <summary>Leases in this process (--dev and tests): the same contract as Redis, for one node.</summary>
public sealed class InMemoryLeaseStore(TimeProvider time) : ILeaseStore
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, SecretLease> _leases = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string Node, DateTimeOffset Until)> _claims = new(StringComparer.Ordinal);

    public Task RecordAsync(SecretLease lease, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            _leases[lease.LeaseId] = lease;
        }

        return Task.CompletedTask;
    }

    public Task<SecretLease?> GetAsync(string leaseId, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult(_leases.GetValueOrDefault(leaseId));
        }
    }

    public Task<IReadOnlyList<SecretLease>> ListAsync(int limit, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult<IReadOnlyList<SecretLease>>([.. _leases.Values.OrderBy(l => l.ExpiresAt).Take(limit)]);
        }
    }

    public Task<bool> TryClaimAsync(string leaseId, string node, TimeSpan hold, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var now = time.GetUtcNow();
            if (!_leases.ContainsKey(leaseId) || (_claims.TryGetValue(leaseId, out var claim) && claim.Until > now))
            {
                return Task.FromResult(false);
            }

            _claims[leaseId] = (node, now + hold);
            return Task.FromResult(true);
        }
    }

    public Task<bool> IsUnclaimedAsync(string leaseId, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult(_leases.ContainsKey(leaseId) && !(_claims.TryGetValue(leaseId, out var claim) && claim.Until > time.GetUtcNow()));
        }
    }

    public Task<bool> CompleteAsync(string leaseId, string node, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (!_claims.TryGetValue(leaseId, out var claim) || claim.Node != node)
            {
                return Task.FromResult(false);
            }

            _claims.Remove(leaseId);
            return Task.FromResult(_leases.Remove(leaseId));
        }
    }

    public Task ReleaseAsync(string leaseId, string node, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_claims.TryGetValue(leaseId, out var claim) && claim.Node == node)
            {
                _claims.Remove(leaseId);
            }
        }

        return Task.CompletedTask;
    }
}
