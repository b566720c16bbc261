using Broker.Core.Errors;
using Broker.Core.Secrets;
using Broker.V1;

namespace Broker.Server.Services;

// IssueSecret (docs/secrets.md): the same adapter shape as IssueCredential.
internal sealed partial class CredentialGrpcService
{
    public override async Task<IssueSecretResponse> IssueSecret(IssueSecretRequest request, Grpc.Core.ServerCallContext context)
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

        var outcome = await _issuer.IssueSecretAsync(
            new SecretRequest(
                request.TaskId,
                ToPhase(request.Phase),
                request.Engine,
                request.Role,
                ttl,
                ToEvidence(request.Attestation, context),
                request.Justification,
                CallContext.From(context)),
            context.CancellationToken);

        return outcome.Pending is { } pending
            ? new IssueSecretResponse { Pending = ApprovalWire.ToPending(pending) }
            : SecretWire.ToWire(outcome.Secret!);
    }
}
