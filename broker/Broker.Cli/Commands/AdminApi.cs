using Broker.Client;
using Broker.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Broker.Cli.Commands;

/// <summary>
/// One channel to the broker's AdminService and RevocationService. Admin calls carry
/// <c>authorization: Bearer &lt;operator token&gt;</c>; failures become <see cref="BrokerRefusalException"/>
/// or a <see cref="CliException"/> that says what to do, and never contain the token.
/// </summary>
internal sealed class AdminApi : IDisposable
{
    public static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(30);

    private readonly GrpcChannel _channel;
    private readonly string? _operatorToken;

    public AdminApi(string address, string? operatorToken)
    {
        Address = address;
        _operatorToken = operatorToken;
        _channel = GrpcChannel.ForAddress(address);
    }

    public string Address { get; }

    public Task<RevokeResponse> RevokeAsync(RevokeRequest request, CancellationToken cancellationToken) =>
        AdminCallAsync("revoke (role responder)", options => new AdminService.AdminServiceClient(_channel).RevokeAsync(request, options).ResponseAsync, cancellationToken);

    public Task<ListRevocationsResponse> ListAsync(int limit, CancellationToken cancellationToken) =>
        AdminCallAsync("list revocations (role responder or auditor)", options => new AdminService.AdminServiceClient(_channel).ListRevocationsAsync(new ListRevocationsRequest { Limit = limit }, options).ResponseAsync, cancellationToken);

    public Task<RestoreRevocationEpochResponse> RestoreEpochAsync(string reason, CancellationToken cancellationToken) =>
        AdminCallAsync("restore the revocation epoch (role responder)", options => new AdminService.AdminServiceClient(_channel).RestoreRevocationEpochAsync(new RestoreRevocationEpochRequest { Reason = reason }, options).ResponseAsync, cancellationToken);

    public Task<FreezeState> FreezeAsync(bool freeze, string reason, CancellationToken cancellationToken) => freeze
        ? AdminCallAsync("freeze issuance (role responder)", options => new AdminService.AdminServiceClient(_channel).FreezeAsync(new FreezeRequest { Reason = reason }, options).ResponseAsync, cancellationToken)
        : AdminCallAsync("unfreeze issuance (role responder)", options => new AdminService.AdminServiceClient(_channel).UnfreezeAsync(new UnfreezeRequest { Reason = reason }, options).ResponseAsync, cancellationToken);

    /// <summary>Introspects <paramref name="token"/>, authenticating as a resource server with <paramref name="resourceServerToken"/>.</summary>
    public Task<IntrospectResponse> IntrospectAsync(string token, string resourceServerToken, CancellationToken cancellationToken) =>
        CallAsync(
            options => new RevocationService.RevocationServiceClient(_channel).IntrospectAsync(
                new IntrospectRequest { Token = token },
                options.WithHeaders(new Metadata { { "authorization", "Bearer " + resourceServerToken } })).ResponseAsync,
            null,
            cancellationToken);

    public Task<ListLeasesResponse> ListLeasesAsync(ListLeasesRequest request, CancellationToken cancellationToken) =>
        AdminCallAsync("list leases (role responder or auditor)", options => new LeaseAdminService.LeaseAdminServiceClient(_channel).ListLeasesAsync(request, options).ResponseAsync, cancellationToken);

    public void Dispose() => _channel.Dispose();

    private Task<T> AdminCallAsync<T>(string what, Func<CallOptions, Task<T>> call, CancellationToken cancellationToken)
    {
        if (_operatorToken is null)
        {
            throw new InvalidOperationException("Admin calls need an operator token.");
        }

        return CallAsync(call, what, cancellationToken);
    }

    private async Task<T> CallAsync<T>(Func<CallOptions, Task<T>> call, string? adminAction, CancellationToken cancellationToken)
    {
        var headers = new Metadata();
        if (adminAction is not null)
        {
            headers.Add("authorization", "Bearer " + _operatorToken);
        }

        var options = new CallOptions(headers, DateTime.UtcNow + CallTimeout, cancellationToken);
        try
        {
            return await ConnectionOptions.CallAsync(Address, async () =>
            {
                try
                {
                    return await call(options);
                }
                catch (RpcException ex)
                {
                    throw new BrokerRefusalException(ex);
                }
            });
        }
        catch (BrokerRefusalException ex) when (adminAction is not null && ex.Refusal is { Reason: null, Status: StatusCode.Unauthenticated })
        {
            throw new CliException(
                ExitCodes.Refused,
                $"UNAUTHENTICATED: the broker did not accept the operator token (expired, wrong issuer or audience, or not an operator token; "
                + "agent credentials never work here). Get a fresh token from your IdP, or use --dev against a dev broker.");
        }
        catch (BrokerRefusalException ex) when (adminAction is not null && ex.Refusal is { Reason: null, Status: StatusCode.PermissionDenied })
        {
            throw new CliException(ExitCodes.Refused, $"PERMISSION_DENIED: the operator token lacks the role to {adminAction}.");
        }
    }
}
