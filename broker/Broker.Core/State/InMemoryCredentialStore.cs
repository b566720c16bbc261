using Broker.Core.Issuance;

namespace Broker.Core.State;

/// <summary>
/// The --dev store: one process, no persistence. Same contract as the Redis store (one
/// contract suite runs against both). A single lock keeps each operation atomic.
/// </summary>
public sealed class InMemoryCredentialStore : ICredentialStore
{
    private readonly Lock _lock = new();

    /// <summary>Never raised: this process holds the state itself.</summary>
    public event Action? Interrupted
    {
        add { }
        remove { }
    }

    private readonly Dictionary<string, TaskRecord> _tasks = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> _consumedProofs = new(StringComparer.Ordinal);

    // Tasks are never forgotten here (the dev store lives as long as the process), so a workload's
    // count is every task it ever claimed.
    private readonly Dictionary<string, int> _tasksPerWorkload = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private DateTimeOffset _lastSweep;

    public InMemoryCredentialStore(TimeProvider time) => _time = time;

    public ValueTask<IssuanceOutcome> RecordIssuanceAsync(IssuanceRecord record, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            Sweep(now);
            if (_tasks.TryGetValue(record.TaskId, out var task))
            {
                if (task.EndedAt is not null)
                {
                    return ValueTask.FromResult(new IssuanceOutcome(IssuanceStatus.TaskEnded));
                }

                if (!string.Equals(task.Owner, record.Subject, StringComparison.Ordinal))
                {
                    return ValueTask.FromResult(new IssuanceOutcome(IssuanceStatus.TaskNotOwned));
                }

                if (task.Phase != record.Phase && !record.PhaseChangeConfirmed && !record.Delegated)
                {
                    return ValueTask.FromResult(new IssuanceOutcome(IssuanceStatus.PhaseChangePending, task.Phase));
                }
            }
            else
            {
                var held = _tasksPerWorkload.GetValueOrDefault(record.Subject);
                if (held >= record.MaxTasksPerWorkload)
                {
                    return ValueTask.FromResult(new IssuanceOutcome(IssuanceStatus.TaskLimitReached));
                }

                _tasksPerWorkload[record.Subject] = held + 1;
            }

            _tasks[record.TaskId] = task is null
                ? new TaskRecord(record.TaskId, record.Subject, record.Phase, record.IssuedAt, null)
                : record.Delegated ? task : task with { Phase = record.Phase };
            return ValueTask.FromResult(new IssuanceOutcome(IssuanceStatus.Recorded, task?.Phase));
        }
    }

    public ValueTask<bool> ClaimProofAsync(string proofKey, DateTimeOffset keepUntil, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            Sweep(now);
            if (_consumedProofs.TryGetValue(proofKey, out var until) && until > now)
            {
                return ValueTask.FromResult(false);
            }

            _consumedProofs[proofKey] = keepUntil;
            return ValueTask.FromResult(true);
        }
    }

    public ValueTask<TaskRecord?> GetTaskAsync(string taskId, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return ValueTask.FromResult(_tasks.GetValueOrDefault(taskId));
        }
    }

    public ValueTask<EndTaskOutcome> EndTaskAsync(string taskId, string? owner, DateTimeOffset at, TimeSpan retention, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (!_tasks.TryGetValue(taskId, out var task))
            {
                if (owner is null)
                {
                    _tasks[taskId] = new TaskRecord(taskId, "", TaskPhase.Planning, at, at);
                    return ValueTask.FromResult(new EndTaskOutcome(EndTaskStatus.Ended, at));
                }

                return ValueTask.FromResult(new EndTaskOutcome(EndTaskStatus.NotFound, null));
            }

            if (owner is not null && !string.Equals(task.Owner, owner, StringComparison.Ordinal))
            {
                return ValueTask.FromResult(new EndTaskOutcome(EndTaskStatus.NotOwned, null));
            }

            if (task.EndedAt is { } endedAt)
            {
                return ValueTask.FromResult(new EndTaskOutcome(EndTaskStatus.AlreadyEnded, endedAt));
            }

            _tasks[taskId] = task with { EndedAt = at };
            return ValueTask.FromResult(new EndTaskOutcome(EndTaskStatus.Ended, at));
        }
    }

    private void Sweep(DateTimeOffset now)
    {
        // At most once a minute, so the dev store stays bounded without a background timer.
        if (now - _lastSweep < TimeSpan.FromMinutes(1))
        {
            return;
        }

        _lastSweep = now;
        foreach (var expired in _consumedProofs.Where(p => p.Value <= now).Select(p => p.Key).ToList())
        {
            _consumedProofs.Remove(expired);
        }
    }
}
