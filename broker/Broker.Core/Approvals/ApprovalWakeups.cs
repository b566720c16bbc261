namespace Broker.Core.Approvals;

/// <summary>
/// Wakes the agents on this node that wait on an approval request when any node changes it
/// (the store's change notification), instead of each waiter polling shared state. A waiter
/// registers <em>before</em> reading the request, so a change between the read and the wait is
/// never missed, and unregisters when it stops waiting, so nothing outlives its waiters.
/// Notifications are only a hint: waiters still re-read now and then in case one was lost.
/// </summary>
public sealed class ApprovalWakeups
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Waiters> _waiting = new(StringComparer.Ordinal);

    public ApprovalWakeups(IApprovalStore store) => store.Changed += Notify;

    /// <summary>Requests with at least one registered waiter on this node.</summary>
    public int Watched
    {
        get
        {
            lock (_lock)
            {
                return _waiting.Count;
            }
        }
    }

    /// <summary>Registers for the next change of <paramref name="approvalId"/>; dispose it when no longer waiting.</summary>
    public Registration Register(string approvalId)
    {
        lock (_lock)
        {
            if (!_waiting.TryGetValue(approvalId, out var waiters))
            {
                _waiting[approvalId] = waiters = new Waiters();
            }

            waiters.Count++;
            return new Registration(this, approvalId, waiters);
        }
    }

    private void Notify(string approvalId)
    {
        Waiters? waiters;
        lock (_lock)
        {
            _waiting.Remove(approvalId, out waiters);
        }

        waiters?.Changed.TrySetResult();
    }

    private void Leave(string approvalId, Waiters waiters)
    {
        lock (_lock)
        {
            if (--waiters.Count == 0 && _waiting.TryGetValue(approvalId, out var current) && ReferenceEquals(current, waiters))
            {
                _waiting.Remove(approvalId);
            }
        }
    }

    internal sealed class Waiters
    {
        public TaskCompletionSource Changed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Count { get; set; }
    }

    /// <summary>One waiter's interest in one request.</summary>
    public sealed class Registration : IDisposable
    {
        private readonly ApprovalWakeups _owner;
        private readonly string _approvalId;
        private readonly Waiters _waiters;
        private int _disposed;

        internal Registration(ApprovalWakeups owner, string approvalId, Waiters waiters)
        {
            _owner = owner;
            _approvalId = approvalId;
            _waiters = waiters;
        }

        /// <summary>Completes at the first change announced after registering.</summary>
        public Task Changed => _waiters.Changed.Task;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                _owner.Leave(_approvalId, _waiters);
            }
        }
    }
}
