using System.Collections.Concurrent;

namespace Broker.Core.Approvals;

/// <summary>
/// Wakes the agents on this node that wait on an approval request when any node changes it
/// (the store's change notification), instead of each waiter polling shared state. A waiter
/// takes its wake-up <em>before</em> reading the request, so a change between the read and
/// the wait is never missed; notifications are only a hint, and waiters still re-read now
/// and then in case one was lost.
/// </summary>
public sealed class ApprovalWakeups
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _waiting = new(StringComparer.Ordinal);

    public ApprovalWakeups(IApprovalStore store) => store.Changed += Notify;

    /// <summary>Completes at the next change of <paramref name="approvalId"/> seen after this call.</summary>
    public Task NextChange(string approvalId) =>
        _waiting.GetOrAdd(approvalId, static _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    private void Notify(string approvalId)
    {
        if (_waiting.TryRemove(approvalId, out var waiters))
        {
            waiters.TrySetResult();
        }
    }
}
