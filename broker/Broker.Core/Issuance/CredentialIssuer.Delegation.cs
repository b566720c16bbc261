using Broker.Core.Audit;
using Broker.Core.Errors;
using Broker.Core.Refusals;
using Broker.Core.Revocation;

namespace Broker.Core.Issuance;

// Delegation to sub-agents (RFC 8693 with an actor token): the subject token is checked by this
// node's own token validation, the sub-agent attests as on IssueCredential, and the request then
// takes the one issuance path below, with the delegation checks added to the sub-agent's own
// policy decision (DelegationDecision).
public sealed partial class CredentialIssuer
{
    /// <summary>Exchanges an agent's token for a narrower one held by a sub-agent, recording the chain.</summary>
    public async Task<DelegatedCredential> DelegateAsync(DelegationRequest delegation, CancellationToken cancellationToken)
    {
        var policy = _policy.Current;
        var subject = await ReadSubjectTokenAsync(delegation, policy, cancellationToken);
        var request = new IssueRequest(
            subject.TaskId,
            delegation.Phase ?? subject.Phase,
            delegation.Scopes.Count == 0 ? subject.Scopes : delegation.Scopes,
            string.IsNullOrEmpty(delegation.Audience) ? subject.Audience : delegation.Audience,
            delegation.RequestedTtl,
            delegation.ActorEvidence,
            delegation.PopPublicKeyJwk,
            delegation.Justification,
            delegation.Context,
            Dpop: delegation.Dpop);

        DelegationChain? chain = null;
        var outcome = await ObservedAsync(request, null, async activity =>
        {
            if (request.Dpop is { } dpop)
            {
                request = request with { PopPublicKeyJwk = await ProvePossessionAsync(request, dpop, policy, cancellationToken), Dpop = null };
            }

            var identity = await AttestAsync(request.Evidence, request.Context, policy.Digest, cancellationToken);
            activity?.SetTag("broker.agent", identity.WorkloadId);
            activity?.SetTag("broker.parent_token_id", subject.TokenId);
            chain = subject.ExtendTo(identity.WorkloadId);
            return await IssueOrRefuseAsync(request, identity, policy, null, cancellationToken, subject);
        });
        return new DelegatedCredential(outcome.Credential!, subject.TaskId, subject.TokenId, chain!);
    }

    /// <summary>
    /// The subject token as this node's introspection sees it: signed here, unexpired, not
    /// revoked (its chain included), and with revocation state current, else refused (fail closed).
    /// </summary>
    private async Task<SubjectToken> ReadSubjectTokenAsync(DelegationRequest delegation, Policy.BrokerPolicy policy, CancellationToken cancellationToken)
    {
        try
        {
            var introspector = _introspector ?? throw BrokerErrors.InvalidArgument(BrokerErrors.SubjectTokenInvalid, "This broker does not serve delegation.");
            _revocations.EnsureCurrent();
            var result = await introspector.IntrospectAsync(delegation.SubjectToken);
            if (!result.Active)
            {
                throw result.InactiveReason switch
                {
                    "expired" => SubjectTokenExpired(),
                    "revoked" => BrokerErrors.FailedPrecondition(BrokerErrors.SubjectTokenRevoked, "The subject token has been revoked."),
                    _ => BrokerErrors.InvalidArgument(BrokerErrors.SubjectTokenInvalid, "The subject token is not a valid access token from this broker."),
                };
            }

            var jwt = result.Token!;
            var facts = result.Facts!.Value;
            var expiresAt = new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero);

            // Introspection allows clock skew; an exchange never extends a token past its expiry.
            if (expiresAt <= _time.GetUtcNow())
            {
                throw SubjectTokenExpired();
            }

            if (jwt.TryGetClaim("cnf", out _))
            {
                // The holder's key or certificate is not in this request: exchanging would strip the binding.
                throw BrokerErrors.InvalidArgument(BrokerErrors.SubjectTokenBound, "A sender-constrained (cnf) token cannot be a subject token.");
            }

            if (!TaskPhaseNames.TryParse(facts.Phase, out var phase) || string.IsNullOrEmpty(facts.TaskId) || jwt.Audiences.Count() != 1
                || (facts.AncestorPhase is not null && !TaskPhaseNames.TryParse(facts.AncestorPhase, out _)))
            {
                throw BrokerErrors.InvalidArgument(BrokerErrors.SubjectTokenInvalid, "The subject token is not a valid access token from this broker.");
            }

            if (delegation.TaskId is { } named && !string.Equals(named, facts.TaskId, StringComparison.Ordinal))
            {
                throw BrokerErrors.InvalidArgument(BrokerErrors.TaskIdInvalid, "A delegated token is for the subject token's task; name that one or none.");
            }

            return new SubjectToken(
                facts.TokenId,
                facts.Subject,
                facts.TaskId,
                phase,
                result.Scopes,
                jwt.Audiences.Single(),
                expiresAt,
                facts.Actors ?? [],
                facts.Ancestors ?? [],
                facts.AncestorPhase is null ? phase : TaskPhaseNames.Parse(facts.AncestorPhase));
        }
        catch (BrokerException ex) when (ex.Reason != BrokerErrors.AuditUnavailable)
        {
            var refusal = Refusal(new IssueRequest("", delegation.Phase, delegation.Scopes, delegation.Audience ?? "", null, null, null, null, delegation.Context), identity: null, policy, ex.Reason) with
            {
                EventId = AuditEventTypes.DelegationRefused.Id,
                Type = AuditEventTypes.DelegationRefused.Name,
                TaskId = null,
                Detail = "subject token refused before attestation",
            };
            if (await AuditRefusalAsync(refusal, RefusalSource.FromPeer(RefusalDoors.Delegation, delegation.Context.Peer), ex, cancellationToken) is { } limited)
            {
                throw limited;
            }

            throw;
        }
    }

    private static BrokerException SubjectTokenExpired() =>
        BrokerErrors.FailedPrecondition(BrokerErrors.SubjectTokenExpired, "The subject token has expired.");

    /// <summary>The delegation fields of an audit record about an exchange from <paramref name="subject"/> to <paramref name="actor"/>.</summary>
    private static AuditEvent AsDelegation(AuditEvent record, SubjectToken subject, string actor, bool issued)
    {
        var chain = subject.ExtendTo(actor);
        return record with
        {
            EventId = issued ? AuditEventTypes.DelegationIssued.Id : AuditEventTypes.DelegationRefused.Id,
            Type = issued ? AuditEventTypes.DelegationIssued.Name : AuditEventTypes.DelegationRefused.Name,
            Actor = subject.Holder,
            ParentTokenId = subject.TokenId,
            Chain = chain.Agents,
            Depth = chain.Depth,
        };
    }
}
