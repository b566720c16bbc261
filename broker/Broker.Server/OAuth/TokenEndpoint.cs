using System.Security.Cryptography;
using System.Text.Json;
using Broker.Core;
using Broker.Core.Approvals;
using Broker.Core.Errors;
using Broker.Core.Issuance;
using Broker.Server.Hosting;
using Microsoft.Extensions.Options;
using Broker.Server.Services;

namespace Broker.Server.OAuth;

/// <summary>
/// <c>POST /oauth2/token</c>: RFC 8693 token exchange and RFC 7523 jwt-bearer, answered by the
/// same <see cref="CredentialIssuer"/> as the gRPC IssueCredential call (attestation, policy,
/// risk, approvals, audit). Gated scopes answer <c>authorization_pending</c> with the approval
/// id (<c>auth_req_id</c>) and digest; the client repeats its grant with <c>auth_req_id</c>.
/// </summary>
internal sealed class TokenEndpoint(CredentialIssuer issuer, ApprovalPolls polls, OAuthEndpointRunner runner, DpopVerifier dpop, IOptions<BrokerOptions> options, TimeProvider time)
{
    // The htu a DPoP proof must name: the token endpoint as the metadata publishes it, whichever node answers.
    private readonly Uri _tokenEndpoint = new(options.Value.Issuer.TrimEnd('/') + OAuthProtocol.TokenPath);

    public Task HandleAsync(HttpContext context) => runner.RunAsync(context, () => ExchangeAsync(context));

    private async Task ExchangeAsync(HttpContext context)
    {
        // A fresh nonce on every answer (RFC 9449 section 8.2), so a client never needs a round trip to get one.
        context.Response.Headers[OAuthProtocol.DpopNonceHeader] = dpop.Nonces.Current();
        var form = await TokenForm.ReadAsync(context);
        var grantType = form["grant_type"]
            ?? throw new OAuthRequestException(OAuthProtocol.InvalidRequest, OAuthReasons.RequestMalformed, "grant_type is required.");
        if (form["requested_token_type"] is { } requested && requested != OAuthProtocol.AccessTokenType)
        {
            throw new OAuthRequestException(OAuthProtocol.InvalidRequest, OAuthReasons.TokenTypeUnsupported, $"requested_token_type must be {OAuthProtocol.AccessTokenType}.");
        }

        if (SubjectProof.IsDelegation(grantType, form))
        {
            await DelegateAsync(context, form);
            return;
        }

        var evidence = await SubjectProof.ReadAsync(grantType, form, context);

        var call = CallContext.From(context);
        if (form["auth_req_id"] is { } approvalId)
        {
            await PollAsync(context, approvalId, evidence, call);
            return;
        }

        var possession = Possession(context);
        var details = AgentTaskDetails.Parse(form["authorization_details"]);
        TaskPhase? phase = details.Phase is null ? null : TaskPhaseNames.TryParse(details.Phase, out var named) ? named : null;
        var taskId = details.TaskId ?? NewTaskId();
        var outcome = await issuer.IssueAsync(
            new IssueRequest(taskId, phase, Scopes(form["scope"]), Audience(form), null, evidence, null, details.Justification, call, PhaseFromPolicy: details.Phase is null, Dpop: possession),
            context.RequestAborted);

        if (outcome.Pending is { } pending)
        {
            polls.TryPoll(pending.Id, pending.Agent);
            await PendingAsync(context, pending, "Approval is required for a gated scope; poll with auth_req_id.");
            return;
        }

        await TokenAsync(context, outcome.Credential!, taskId, details.Justification);
    }

    /// <summary>
    /// Delegation (RFC 8693 with <c>actor_token</c>): the sub-agent exchanges the delegating
    /// agent's Broker token for its own. Task, scopes, audience and phase default to the subject
    /// token's; <c>authorization_details</c> may lower the phase (docs/oauth.md).
    /// </summary>
    private async Task DelegateAsync(HttpContext context, TokenForm form)
    {
        var subjectToken = form["subject_token"]
            ?? throw new OAuthRequestException(OAuthProtocol.InvalidRequest, OAuthReasons.RequestMalformed, "subject_token is required with subject_token_type.");
        if (form["auth_req_id"] is not null)
        {
            throw new OAuthRequestException(OAuthProtocol.InvalidRequest, OAuthReasons.RequestMalformed, "auth_req_id does not apply to a delegation.");
        }

        var actor = await SubjectProof.ActorAsync(form, context);
        var details = AgentTaskDetails.Parse(form["authorization_details"]);
        TaskPhase? phase = null;
        if (details.Phase is not null)
        {
            phase = TaskPhaseNames.TryParse(details.Phase, out var named)
                ? named
                : throw BrokerErrors.InvalidArgument(BrokerErrors.PhaseInvalid, "phase must be planning, execution or recovery.");
        }

        var audience = Audience(form);
        var delegated = await issuer.DelegateAsync(
            new DelegationRequest(subjectToken, actor, Scopes(form["scope"]), phase, audience.Length == 0 ? null : audience, null, null, details.Justification, CallContext.From(context), Possession(context), details.TaskId),
            context.RequestAborted);
        await TokenAsync(context, delegated.Credential, delegated.TaskId, details.Justification, delegated);
    }

    private async Task PollAsync(HttpContext context, string approvalId, Core.Attestation.AttestationEvidence? evidence, RequestContext call)
    {
        var identity = await issuer.AttestWaiterAsync(evidence, call, context.RequestAborted);
        if (ApprovalRequest.IsWellFormedId(approvalId) && !polls.TryPoll(approvalId, identity.WorkloadId))
        {
            await OAuthResponse.ErrorAsync(
                context,
                OAuthProtocol.SlowDown,
                OAuthReasons.PolledTooFast,
                $"Poll at most every {(int)polls.Interval.TotalSeconds}s.",
                more: w => w.WriteNumber("interval", (int)polls.Interval.TotalSeconds));
            return;
        }

        var progress = await issuer.CheckApprovalAsync(approvalId, identity, call, context.RequestAborted);
        var approval = progress.Record.Request;
        if (progress.Credential is { } issued)
        {
            polls.Forget(approvalId, identity.WorkloadId);
            await TokenAsync(context, issued, approval.TaskId, approval.Justification);
            return;
        }

        await PendingAsync(context, approval, $"Waiting for approval ({progress.Record.Votes.Count} given so far).");
    }

    private Task PendingAsync(HttpContext context, ApprovalRequest pending, string message) =>
        OAuthResponse.ErrorAsync(context, OAuthProtocol.AuthorizationPending, OAuthReasons.ApprovalPending, message, more: w =>
        {
            w.WriteString("auth_req_id", pending.Id);
            w.WriteString("approval_digest", pending.Digest);
            w.WriteNumber("expires_in", SecondsUntil(pending.ExpiresAt));
            w.WriteNumber("interval", (int)polls.Interval.TotalSeconds);
            w.WriteString("task_id", pending.TaskId);
            w.WriteString("phase", pending.Phase.ToWire());
        });

    private Task TokenAsync(HttpContext context, IssuedCredential issued, string taskId, string? justification, DelegatedCredential? delegated = null) =>
        OAuthResponse.WriteAsync(context, StatusCodes.Status200OK, w =>
        {
            if (delegated is not null)
            {
                // Where the token sits in its chain; the token's own act and ancestor_jti claims say the same.
                w.WriteString("parent_token_id", delegated.ParentTokenId);
                w.WriteNumber("delegation_depth", delegated.Chain.Depth);
                w.WriteStartArray("delegation_chain");
                foreach (var agent in delegated.Chain.Agents)
                {
                    w.WriteStringValue(agent);
                }

                w.WriteEndArray();
            }

            w.WriteString("access_token", issued.AccessToken);
            w.WriteString("issued_token_type", OAuthProtocol.AccessTokenType);
            w.WriteString("token_type", issued.TokenType);
            w.WriteNumber("expires_in", SecondsUntil(issued.ExpiresAt));
            w.WriteString("scope", string.Join(' ', issued.GrantedScopes));
            w.WriteString("token_id", issued.TokenId);
            w.WriteString("task_id", taskId);
            w.WriteString("phase", issued.Phase.ToWire());
            if (issued.ApprovalId is not null)
            {
                w.WriteString("approval_id", issued.ApprovalId);
            }

            w.WriteStartArray("authorization_details");
            w.WriteStartObject();
            w.WriteString("type", OAuthProtocol.AgentTaskType);
            w.WriteString("task_id", taskId);
            w.WriteString("phase", issued.Phase.ToWire());
            if (!string.IsNullOrEmpty(justification))
            {
                w.WriteString("justification", justification);
            }

            w.WriteEndObject();
            w.WriteEndArray();
        });

    /// <summary>The request's DPoP proof (RFC 9449 section 5); null without one, refused when sent twice.</summary>
    private DpopPresentation? Possession(HttpContext context)
    {
        var proofs = context.Request.Headers[OAuthProtocol.DpopHeader];
        return proofs.Count switch
        {
            0 => null,
            1 => new DpopPresentation(proofs[0] ?? "", HttpMethods.Post, _tokenEndpoint),
            _ => throw new OAuthRequestException(OAuthProtocol.InvalidDpopProof, BrokerErrors.DpopProofMissing, "Send exactly one DPoP header."),
        };
    }

    private long SecondsUntil(DateTimeOffset at) => Math.Max(0, (long)(at - time.GetUtcNow()).TotalSeconds);

    private static IReadOnlyList<string> Scopes(string? scope) =>
        scope is null ? [] : scope.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>RFC 8707 <c>resource</c> or RFC 8693 <c>audience</c>: one resource server per token.</summary>
    private static string Audience(TokenForm form)
    {
        var targets = form.All("resource").Concat(form.All("audience")).Distinct(StringComparer.Ordinal).Take(2).ToArray();
        return targets.Length switch
        {
            0 => "",
            1 => targets[0],
            _ => throw new OAuthRequestException(OAuthProtocol.InvalidTarget, OAuthReasons.TargetInvalid, "Name one resource server (resource or audience) per token."),
        };
    }

    /// <summary>A task for a client that names none: 128 random bits, never reused.</summary>
    private static string NewTaskId() => "task_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
}
