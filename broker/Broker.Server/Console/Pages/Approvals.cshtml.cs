using Broker.Core.Approvals;
using Broker.Core.Risk;
using Broker.Server.Hosting;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;

namespace Broker.Server.OperatorConsole.Pages;

/// <summary>
/// The approver's queue. Approve and deny go to <see cref="ApprovalService"/> with the operator
/// as the approval API would name them, so its refusals (the requester's owner, a second vote,
/// a group that is not an approver) are the API's, audited the same way.
/// </summary>
[Authorize(Policy = ConsoleAuthentication.ApproverPolicy)]
public sealed class ApprovalsModel(ApprovalService approvals, RiskService risk, TimeProvider time, IOptions<BrokerOptions> options) : ConsolePageModel(options)
{
    public const int Limit = 200;

    public sealed record Row(ApprovalRecord Record, string CurrentRisk, bool Frozen);

    public IReadOnlyList<Row> Pending { get; private set; } = [];

    public DateTimeOffset Now { get; private set; }

    public async Task OnGetAsync() => await LoadAsync();

    public async Task OnPostApproveAsync(string id)
    {
        ApprovalRecord? after = null;
        if (await TryAsync(async () => after = await approvals.ApproveAsync(id ?? "", ConsoleRequest.Approver(User, Operators), CallContext, HttpContext.RequestAborted)))
        {
            // A waiting agent may already have used the approval by the time the answer is read.
            Done = after!.Status is ApprovalStatus.Approved or ApprovalStatus.Consumed
                ? $"Approved {id}: quorum reached, the agent's wait ends with its token."
                : $"Vote recorded on {id}: waiting for more approvers.";
        }

        await LoadAsync();
    }

    public async Task OnPostDenyAsync(string id, string? reason)
    {
        if (await TryAsync(async () => await approvals.DenyAsync(id ?? "", ConsoleRequest.Approver(User, Operators), reason ?? "", CallContext, HttpContext.RequestAborted)))
        {
            Done = $"Denied {id}.";
        }

        await LoadAsync();
    }

    private async Task LoadAsync()
    {
        Now = time.GetUtcNow();
        var rows = new List<Row>();
        await TryAsync(async () =>
        {
            foreach (var record in await approvals.ListAsync(Limit, HttpContext.RequestAborted))
            {
                var state = await risk.GetAsync(RiskSubject.ForAgent(record.Request.Agent), HttpContext.RequestAborted);
                rows.Add(new Row(record, state.Current?.Level.ToWire() ?? "unknown", state.Freeze is not null));
            }
        });
        Pending = rows;
    }
}
