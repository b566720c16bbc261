using Broker.Core.Attestation;
using Broker.Core.Audit;
using Broker.Core.Errors;
using Broker.Core.Issuance;
using Broker.Revocation;

namespace Broker.Core.Revocation;

public sealed partial class Revoker
{
    /// <summary>The actor a workload revoking its own token is recorded as.</summary>
    public static string HolderActor(WorkloadIdentity holder) => "agent:" + holder.WorkloadId;

    /// <summary>
    /// A workload revokes a token issued to it (RFC 7009, proven by its attestation). A token
    /// issued to another workload is refused and the attempt audited: holding a proof for one
    /// workload never lets it end another's access.
    /// </summary>
    public async Task<IReadOnlyList<RevocationEntry>> RevokeHeldTokenAsync(
        string tokenId, string tokenSubject, WorkloadIdentity holder, string? reason, RequestContext context, CancellationToken cancellationToken)
    {
        var actor = HolderActor(holder);
        if (!string.Equals(tokenSubject, holder.WorkloadId, StringComparison.Ordinal))
        {
            await _audit.AppendAsync(
                new AuditEvent
                {
                    EventId = AuditEventTypes.RevokeRefused.Id,
                    Type = AuditEventTypes.RevokeRefused.Name,
                    Time = _time.GetUtcNow(),
                    CorrelationId = context.CorrelationId,
                    PolicyDigest = _policy.Current.Digest,
                    Outcome = AuditOutcomes.Failure,
                    Reason = BrokerErrors.TokenNotHeld,
                    Actor = actor,
                    Subject = holder.WorkloadId,
                    AttestationKind = holder.Kind.ToString(),
                    TrustSource = holder.TrustSource,
                    Selector = RevocationSelector.ForToken(tokenId).ToString(),
                    TokenId = tokenId,
                    Peer = context.Peer,
                },
                cancellationToken);
            throw BrokerErrors.PermissionDenied(BrokerErrors.TokenNotHeld, "The token was issued to another workload; only its holder or a responder may revoke it.");
        }

        return await RevokeAsync([RevocationSelector.ForToken(tokenId)], actor, string.IsNullOrWhiteSpace(reason) ? "revoked by its holder" : reason, context, cancellationToken);
    }
}
