using Broker.Core.Secrets;
using Broker.V1;
using Grpc.Core;
using Microsoft.AspNetCore.Authorization;

namespace Broker.Server.Services;

/// <summary>Operators' list of live leases (revoking goes through AdminService.Revoke).</summary>
internal sealed class LeaseAdminGrpcService(SecretLeases leases) : LeaseAdminService.LeaseAdminServiceBase
{
    [Authorize(Policy = "responder-or-auditor")]
    public override async Task<ListLeasesResponse> ListLeases(ListLeasesRequest request, ServerCallContext context)
    {
        var limit = request.Limit is <= 0 ? 100 : Math.Min(request.Limit, 1000);
        IReadOnlyList<SecretLease> live;
        try
        {
            live = await leases.Store.ListAsync(10_000, context.CancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw Broker.Core.Errors.BrokerErrors.Unavailable(SecretErrors.LeaseStateUnavailable, "Lease state cannot be reached; try again.", ex);
        }

        var matching = live
            .Where(l => request.TaskId.Length == 0 || l.TaskId == request.TaskId)
            .Where(l => request.Agent.Length == 0 || l.Subject == request.Agent)
            .Take(limit);
        return new ListLeasesResponse { Leases = { matching.Select(SecretWire.ToWire) } };
    }
}
