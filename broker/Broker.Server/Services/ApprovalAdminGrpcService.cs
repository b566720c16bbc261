using Broker.Core.Approvals;
using Broker.Server.Hosting;
using Broker.V1;
using Grpc.Core;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;

namespace Broker.Server.Services;

/// <summary>The approver side of approval gates. The approver is whoever the operator token names.</summary>
[Authorize(Policy = OperatorRoles.Approver)]
internal sealed class ApprovalAdminGrpcService : ApprovalAdminService.ApprovalAdminServiceBase
{
    private readonly ApprovalService _approvals;
    private readonly OperatorOptions _operators;
    private readonly TimeProvider _time;

    public ApprovalAdminGrpcService(ApprovalService approvals, IOptions<BrokerOptions> options, TimeProvider time)
    {
        _approvals = approvals;
        _operators = options.Value.Operators;
        _time = time;
    }

    public override async Task<ListApprovalsResponse> ListApprovals(ListApprovalsRequest request, ServerCallContext context)
    {
        var limit = request.Limit <= 0 ? 50 : Math.Min(request.Limit, 500);
        var records = await _approvals.ListAsync(limit, context.CancellationToken);
        var now = _time.GetUtcNow();
        return new ListApprovalsResponse { Approvals = { records.Select(r => ApprovalWire.ToWire(r, now)) } };
    }

    public override async Task<ApprovalInfo> GetApproval(GetApprovalRequest request, ServerCallContext context) =>
        ApprovalWire.ToWire(await _approvals.GetAsync(request.ApprovalId, CallContext.From(context), context.CancellationToken), _time.GetUtcNow());

    public override async Task<ApprovalInfo> Approve(ApproveRequest request, ServerCallContext context) =>
        ApprovalWire.ToWire(await _approvals.ApproveAsync(request.ApprovalId, ApproverOf(context), CallContext.From(context), context.CancellationToken), _time.GetUtcNow());

    public override async Task<ApprovalInfo> Deny(DenyRequest request, ServerCallContext context) =>
        ApprovalWire.ToWire(await _approvals.DenyAsync(request.ApprovalId, ApproverOf(context), request.Reason, CallContext.From(context), context.CancellationToken), _time.GetUtcNow());

    private Approver ApproverOf(ServerCallContext context) => OperatorAuthentication.ApproverOf(context.GetHttpContext().User, _operators);
}
