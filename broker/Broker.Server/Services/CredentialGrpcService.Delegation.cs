using Broker.Core.Errors;
using Broker.Core.Issuance;
using Broker.V1;
using Grpc.Core;

namespace Broker.Server.Services;

// ExchangeCredential: the gRPC door to CredentialIssuer.DelegateAsync (the OAuth token endpoint's
// actor_token exchange is the other).
internal sealed partial class CredentialGrpcService
{
    public override async Task<ExchangeCredentialResponse> ExchangeCredential(ExchangeCredentialRequest request, ServerCallContext context)
    {
        var delegated = await _issuer.DelegateAsync(
            new DelegationRequest(
                request.SubjectToken,
                ToEvidence(request.ActorAttestation, context),
                request.Scopes,
                request.Phase == Phase.Unspecified ? null : ToPhase(request.Phase) ?? throw BrokerErrors.InvalidArgument(BrokerErrors.PhaseInvalid, "phase must be planning, execution or recovery."),
                request.Audience,
                Ttl(request.RequestedTtl),
                request.PopPublicKeyJwk,
                request.Justification,
                CallContext.From(context)),
            context.CancellationToken);

        return new ExchangeCredentialResponse
        {
            Credential = ApprovalWire.ToWire(delegated.Credential),
            TaskId = delegated.TaskId,
            ParentTokenId = delegated.ParentTokenId,
            Chain = { delegated.Chain.Agents },
            Depth = delegated.Chain.Depth,
        };
    }
}
