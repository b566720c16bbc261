using Broker.Core.Errors;
using Broker.Core.Revocation;
using Broker.Revocation.Wire;
using Broker.Server.Hosting;
using Broker.V1;
using Grpc.Core;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;

namespace Broker.Server.Services;

/// <summary>The operator API. Every method requires an operator token with the role it names.</summary>
internal sealed class AdminGrpcService : AdminService.AdminServiceBase
{
    private readonly Revoker _revocations;
    private readonly RevocationFeed _feed;
    private readonly OperatorOptions _operators;

    public AdminGrpcService(Revoker revocations, RevocationFeed feed, IOptions<BrokerOptions> options)
    {
        _revocations = revocations;
        _feed = feed;
        _operators = options.Value.Operators;
    }

    [Authorize(Policy = OperatorRoles.Responder)]
    public override async Task<RevokeResponse> Revoke(RevokeRequest request, ServerCallContext context)
    {
        var entries = await _revocations.RevokeAsync(
            request.Selectors.Select(ToDomain).ToList(),
            OperatorAuthentication.ActorOf(context.GetHttpContext(), _operators),
            request.Reason,
            CallContext.From(context),
            context.CancellationToken);
        return new RevokeResponse { Revocations = { entries.Select(RevocationWire.ToWire) } };
    }

    [Authorize(Policy = "responder-or-auditor")]
    public override Task<ListRevocationsResponse> ListRevocations(ListRevocationsRequest request, ServerCallContext context)
    {
        var limit = request.Limit is <= 0 ? 100 : Math.Min(request.Limit, 1000);
        var entries = _feed.LiveEntries().Reverse().Take(limit);
        return Task.FromResult(new ListRevocationsResponse { Revocations = { entries.Select(RevocationWire.ToWire) } });
    }

    [Authorize(Policy = OperatorRoles.Responder)]
    public override async Task<FreezeState> Freeze(FreezeRequest request, ServerCallContext context) =>
        ToWire(await _revocations.SetFreezeAsync(true, OperatorAuthentication.ActorOf(context.GetHttpContext(), _operators), request.Reason, CallContext.From(context), context.CancellationToken));

    [Authorize(Policy = OperatorRoles.Responder)]
    public override async Task<FreezeState> Unfreeze(UnfreezeRequest request, ServerCallContext context) =>
        ToWire(await _revocations.SetFreezeAsync(false, OperatorAuthentication.ActorOf(context.GetHttpContext(), _operators), request.Reason, CallContext.From(context), context.CancellationToken));

    private static FreezeState ToWire(Broker.Core.Revocation.IssuanceFreeze? freeze) => freeze is null
        ? new FreezeState { Frozen = false }
        : new FreezeState { Frozen = true, Actor = freeze.Actor, Reason = freeze.Reason, Since = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(freeze.Since) };

    [Authorize(Policy = OperatorRoles.Responder)]
    public override async Task<RestoreRevocationEpochResponse> RestoreRevocationEpoch(RestoreRevocationEpochRequest request, ServerCallContext context)
    {
        var (epoch, cutoff) = await _revocations.RestoreEpochAsync(
            OperatorAuthentication.ActorOf(context.GetHttpContext(), _operators),
            request.Reason,
            CallContext.From(context),
            context.CancellationToken);
        await _feed.SyncAsync(context.CancellationToken);
        return new RestoreRevocationEpochResponse { Epoch = epoch, Cutoff = RevocationWire.ToWire(cutoff) };
    }

    // An operator's selector that names no target, or lacks its phase or time, is refused whole.
    private static Broker.Revocation.RevocationSelector ToDomain(Broker.V1.RevocationSelector selector) =>
        RevocationWire.TryToSelector(selector, out var domain, out var problem)
            ? domain
            : throw BrokerErrors.InvalidArgument(BrokerErrors.SelectorInvalid, problem);
}
