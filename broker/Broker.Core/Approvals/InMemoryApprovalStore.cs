namespace Broker.Core.Approvals;

/// <summary>Approvals for --dev and tests: one process, one lock. Same semantics as the Redis store.</summary>
public sealed class InMemoryApprovalStore : IApprovalStore
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    public event Action<string>? Changed;

    public ValueTask<bool> CreateAsync(ApprovalRequest request, DateTimeOffset keepUntil, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            foreach (var stale in _entries.Where(e => e.Value.KeepUntil <= request.CreatedAt).Select(e => e.Key).ToList())
            {
                _entries.Remove(stale);
            }

            if (!_entries.TryAdd(request.Id, new Entry(request, keepUntil)))
            {
                throw new InvalidOperationException("Approval id collision.");
            }
        }

        return ValueTask.FromResult(true);
    }

    public ValueTask<ApprovalRecord?> GetAsync(string id, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return ValueTask.FromResult(_entries.TryGetValue(id, out var e) ? e.Snapshot() : null);
        }
    }

    public ValueTask<IReadOnlyList<ApprovalRecord>> ListPendingAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            IReadOnlyList<ApprovalRecord> list = _entries.Values
                .Where(e => e.Status == ApprovalStatus.Pending && e.Request.ExpiresAt > now)
                .OrderBy(e => e.Request.ExpiresAt)
                .Take(limit)
                .Select(e => e.Snapshot())
                .ToList();
            return ValueTask.FromResult(list);
        }
    }

    public ValueTask<IReadOnlyList<string>> ListLapsedAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            IReadOnlyList<string> ids = _entries.Values
                .Where(e => e.Status is ApprovalStatus.Pending or ApprovalStatus.Approved && e.Request.ExpiresAt <= now)
                .OrderBy(e => e.Request.ExpiresAt)
                .Take(limit)
                .Select(e => e.Request.Id)
                .ToList();
            return ValueTask.FromResult(ids);
        }
    }

    public ValueTask<ApprovalChange> ApproveAsync(string id, string approver, IReadOnlyList<int> gates, DateTimeOffset now, CancellationToken cancellationToken) =>
        Change(id, now, e =>
        {
            if (e.Status != ApprovalStatus.Pending)
            {
                return new ApprovalChange(ApprovalChangeStatus.WrongState, e.Status);
            }

            if (e.Votes.Any(v => v.Vote.Approver == approver))
            {
                return new ApprovalChange(ApprovalChangeStatus.AlreadyVoted, e.Status);
            }

            e.Votes.Add((new ApprovalVote(approver, now), gates.ToArray()));
            var met = e.Request.Gates.Select((g, i) => e.Votes.Count(v => v.Gates.Contains(i)) >= g.Quorum).All(x => x);
            if (met)
            {
                e.Status = ApprovalStatus.Approved;
                e.DecidedAt = now;
            }

            return new ApprovalChange(ApprovalChangeStatus.Applied, e.Status);
        });

    public ValueTask<ApprovalChange> DenyAsync(string id, string approver, string reason, DateTimeOffset now, CancellationToken cancellationToken) =>
        Change(id, now, e =>
        {
            if (e.Status is not (ApprovalStatus.Pending or ApprovalStatus.Approved))
            {
                return new ApprovalChange(ApprovalChangeStatus.WrongState, e.Status);
            }

            e.Status = ApprovalStatus.Denied;
            e.DecidedBy = approver;
            e.Reason = reason;
            e.DecidedAt = now;
            return new ApprovalChange(ApprovalChangeStatus.Applied, e.Status);
        });

    public ValueTask<ApprovalChange> ExpireAsync(string id, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (!_entries.TryGetValue(id, out var e))
            {
                return ValueTask.FromResult(new ApprovalChange(ApprovalChangeStatus.NotFound, null));
            }

            if (e.Status is not (ApprovalStatus.Pending or ApprovalStatus.Approved) || e.Request.ExpiresAt > now)
            {
                return ValueTask.FromResult(new ApprovalChange(ApprovalChangeStatus.WrongState, e.Status));
            }

            e.Status = ApprovalStatus.Expired;
            e.DecidedAt = now;
        }

        Changed?.Invoke(id);
        return ValueTask.FromResult(new ApprovalChange(ApprovalChangeStatus.Applied, ApprovalStatus.Expired));
    }

    public ValueTask<ApprovalChange> ConsumeAsync(string id, string tokenId, DateTimeOffset now, CancellationToken cancellationToken) =>
        Change(id, now, e =>
        {
            if (e.Status != ApprovalStatus.Approved)
            {
                return new ApprovalChange(ApprovalChangeStatus.WrongState, e.Status);
            }

            e.Status = ApprovalStatus.Consumed;
            e.TokenId = tokenId;
            return new ApprovalChange(ApprovalChangeStatus.Applied, e.Status);
        });

    // Shared checks: unknown, and expired (a pending or approved request past its expiry changes no more).
    private ValueTask<ApprovalChange> Change(string id, DateTimeOffset now, Func<Entry, ApprovalChange> change)
    {
        ApprovalChange result;
        lock (_lock)
        {
            if (!_entries.TryGetValue(id, out var e))
            {
                return ValueTask.FromResult(new ApprovalChange(ApprovalChangeStatus.NotFound, null));
            }

            if (e.Status is ApprovalStatus.Pending or ApprovalStatus.Approved && e.Request.ExpiresAt <= now)
            {
                return ValueTask.FromResult(new ApprovalChange(ApprovalChangeStatus.Expired, ApprovalStatus.Expired));
            }

            result = change(e);
        }

        // Outside the lock: waiters woken here read the store again.
        if (result.Outcome == ApprovalChangeStatus.Applied)
        {
            Changed?.Invoke(id);
        }

        return ValueTask.FromResult(result);
    }

    private sealed class Entry(ApprovalRequest request, DateTimeOffset keepUntil)
    {
        public ApprovalRequest Request { get; } = request;
        public DateTimeOffset KeepUntil { get; } = keepUntil;
        public ApprovalStatus Status = ApprovalStatus.Pending;
        public readonly List<(ApprovalVote Vote, int[] Gates)> Votes = [];
        public string? DecidedBy;
        public string? Reason;
        public DateTimeOffset? DecidedAt;
        public string? TokenId;

        public ApprovalRecord Snapshot() => new(Request, Status, Votes.Select(v => v.Vote).ToArray(), DecidedBy, Reason, DecidedAt, TokenId);
    }
}
