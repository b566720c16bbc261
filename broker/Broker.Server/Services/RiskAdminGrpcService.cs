using Broker.Core.Errors;
using Broker.Core.Risk;
using Broker.Server.Hosting;
using Broker.V1;
using Grpc.Core;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;

namespace Broker.Server.Services;

/// <summary>The operator side of risk: show and clear (responders), tail telemetry (telemetry readers).</summary>
internal sealed class RiskAdminGrpcService : RiskAdminService.RiskAdminServiceBase
{
    private readonly RiskService _risk;
    private readonly ITelemetryReader _telemetry;
    private readonly OperatorOptions _operators;

    public RiskAdminGrpcService(RiskService risk, ITelemetryReader telemetry, IOptions<BrokerOptions> options)
    {
        _risk = risk;
        _telemetry = telemetry;
        _operators = options.Value.Operators;
    }

    [Authorize(Policy = "responder-or-auditor")]
    public override async Task<GetRiskResponse> GetRisk(GetRiskRequest request, ServerCallContext context)
    {
        var state = await _risk.GetAsync(Subject(request.SubjectCase == GetRiskRequest.SubjectOneofCase.TaskId, request.Agent, request.TaskId, request.SubjectCase == GetRiskRequest.SubjectOneofCase.None), context.CancellationToken);
        return new GetRiskResponse { Current = RiskWire.ToWire(state.Current), Freeze = RiskWire.ToWire(state.Freeze) };
    }

    [Authorize(Policy = OperatorRoles.Responder)]
    public override async Task<ClearRiskResponse> ClearRisk(ClearRiskRequest request, ServerCallContext context)
    {
        var before = await _risk.ClearAsync(
            Subject(request.SubjectCase == ClearRiskRequest.SubjectOneofCase.TaskId, request.Agent, request.TaskId, request.SubjectCase == ClearRiskRequest.SubjectOneofCase.None),
            OperatorAuthentication.ActorOf(context.GetHttpContext(), _operators),
            request.Reason,
            CallContext.From(context),
            context.CancellationToken);
        return new ClearRiskResponse { Cleared = RiskWire.ToWire(before.Current), Lifted = RiskWire.ToWire(before.Freeze) };
    }

    [Authorize(Policy = OperatorRoles.TelemetryReader)]
    public override async Task<TailSignalsResponse> TailSignals(TailSignalsRequest request, ServerCallContext context)
    {
        var limit = request.Limit <= 0 ? 50 : Math.Min(request.Limit, 1000);
        var after = string.IsNullOrEmpty(request.After) ? null : request.After;
        if (after is not null && (after.Length > 64 || !after.All(c => char.IsAsciiDigit(c) || c == '-')))
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.SelectorInvalid, "after must be a cursor from a previous response.");
        }

        var page = await _telemetry.ReadAsync(after, limit, context.CancellationToken);
        return new TailSignalsResponse { Signals = { page.Records.Select(RiskWire.ToWire) }, Cursor = page.Cursor ?? "" };
    }

    private static RiskSubject Subject(bool isTask, string agent, string taskId, bool missing) => missing
        ? throw BrokerErrors.InvalidArgument(BrokerErrors.SelectorInvalid, "Name an agent or a task_id.")
        : isTask ? RiskSubject.ForTask(taskId) : RiskSubject.ForAgent(agent);
}
