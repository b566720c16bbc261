using Broker.Core;
using Broker.Core.Attestation;
using Broker.Core.Errors;
using Broker.Core.Issuance;
using Broker.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using CoreEndTask = Broker.Core.Issuance.EndTaskRequest;
using CorePhase = Broker.Core.TaskPhase;

namespace Broker.Server.Services;

/// <summary>Thin adapter from the wire contract to <see cref="CredentialIssuer"/>.</summary>
internal sealed class CredentialGrpcService : CredentialService.CredentialServiceBase
{
    private readonly CredentialIssuer _issuer;

    public CredentialGrpcService(CredentialIssuer issuer) => _issuer = issuer;

    public override async Task<IssueCredentialResponse> IssueCredential(IssueCredentialRequest request, ServerCallContext context)
    {
        TimeSpan? ttl = null;
        if (request.RequestedTtl is { } duration)
        {
            if (duration.Seconds < 0 || duration.Nanos < 0 || duration.Seconds > 86_400)
            {
                throw BrokerErrors.InvalidArgument(BrokerErrors.TtlInvalid, "requested_ttl must be positive and at most one day.");
            }

            ttl = duration.ToTimeSpan();
        }

        var issued = await _issuer.IssueAsync(
            new IssueRequest(
                request.TaskId,
                ToPhase(request.Phase),
                request.Scopes,
                request.Audience,
                ttl,
                ToEvidence(request.Attestation, context),
                request.PopPublicKeyJwk,
                request.Justification,
                CallContext.From(context)),
            context.CancellationToken);

        return new IssueCredentialResponse
        {
            AccessToken = issued.AccessToken,
            TokenId = issued.TokenId,
            GrantedScopes = { issued.GrantedScopes },
            ExpiresAt = Timestamp.FromDateTimeOffset(issued.ExpiresAt),
            Subject = issued.Subject,
            Phase = request.Phase,
            PolicyDigest = issued.PolicyDigest,
            TokenType = issued.TokenType,
        };
    }

    public override async Task<EndTaskResponse> EndTask(Broker.V1.EndTaskRequest request, ServerCallContext context)
    {
        var endedAt = await _issuer.EndTaskAsync(
            new CoreEndTask(request.TaskId, ToEvidence(request.Attestation, context), request.Reason, CallContext.From(context)),
            context.CancellationToken);
        return new EndTaskResponse { EndedAt = Timestamp.FromDateTimeOffset(endedAt) };
    }

    internal static CorePhase? ToPhase(Phase phase) => phase switch
    {
        Phase.Planning => CorePhase.Planning,
        Phase.Execution => CorePhase.Execution,
        Phase.Recovery => CorePhase.Recovery,
        _ => null,
    };

    internal static AttestationEvidence? ToEvidence(AttestationProof? proof, ServerCallContext context) => proof?.KindCase switch
    {
        AttestationProof.KindOneofCase.JwtSvid => new JwtSvidEvidence(proof.JwtSvid),
        AttestationProof.KindOneofCase.OidcToken => new OidcTokenEvidence(proof.OidcToken),
        AttestationProof.KindOneofCase.X509Svid when proof.X509Svid =>
            new X509SvidEvidence(context.GetHttpContext().Connection.ClientCertificate),
        _ => null,
    };
}
