namespace Broker.Core.Approvals;

/// <summary>
/// Tells people where approvals stand (e.g. a chat webhook) when a request is opened, approved,
/// denied, expired or used. Best effort and never blocking: the audit log is the record, and a
/// notifier that is down must not slow or fail issuance.
/// </summary>
public interface IApprovalNotifier
{
    /// <summary>Queues a notice; returns at once.</summary>
    void Notify(ApprovalNotice notice);
}

/// <param name="Transition">opened, approved, denied, expired or consumed.</param>
/// <param name="Actor">Who moved it (the agent, <c>operator:name</c>, or null for the broker).</param>
public sealed record ApprovalNotice(string Transition, ApprovalRequest Request, string? Actor, DateTimeOffset At);

/// <summary>The default: nobody is told (approvers poll <c>brokerctl approvals list</c>).</summary>
public sealed class NoApprovalNotifier : IApprovalNotifier
{
    public void Notify(ApprovalNotice notice)
    {
    }
}
