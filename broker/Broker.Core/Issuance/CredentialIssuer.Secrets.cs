using Broker.Core.Approvals;
using Broker.Core.Attestation;
using Broker.Core.Audit;
using Broker.Core.Errors;
using Broker.Core.Policy;
using Broker.Core.Secrets;
using Broker.Core.State;
using Microsoft.Extensions.Logging;

namespace Broker.Core.Issuance;

// Downstream credentials (docs/secrets.md): the token path's attestation, task ownership, phase
// rules, risk gate, approval gates and audit, with a lease and an engine login instead of a JWT.
public sealed partial class CredentialIssuer
{
    /// <summary>Issues a downstream credential under a lease, or, when policy gates it, opens an approval request and answers pending.</summary>
    public async Task<SecretOutcome> IssueSecretAsync(SecretRequest request, CancellationToken cancellationToken)
    {
        using var activity = Diagnostics.BrokerActivity.Source.StartActivity("broker.issue_secret");
        activity?.SetTag("broker.phase", request.Phase?.ToWire() ?? "unspecified");
        activity?.SetTag("broker.engine", AuditText.Bound(request.Engine, PolicyLoader.MaxAgentNameLength));
        var policy = _policy.Current;
        var identity = await AttestAsync(request.Evidence, request.Context, policy.Digest, cancellationToken);
        activity?.SetTag("broker.agent", identity.WorkloadId);
        var outcome = await IssueSecretOrRefuseAsync(request, identity, policy, null, cancellationToken);
        activity?.SetTag("broker.lease_id", outcome.Secret?.LeaseId);
        activity?.SetTag("broker.approval_id", outcome.Pending?.Id);
        return outcome;
    }

    // Approved: the stored request, checked again against policy, revocation and risk (approval never overrides them).
    private async Task<ApprovalProgress> RedeemSecretApprovalAsync(ApprovalRecord record, WorkloadIdentity identity, RequestContext context, CancellationToken cancellationToken)
    {
        var approval = record.Request;
        if (!SecretGrant.TryParseApprovalScope(approval.Scopes[0], out var engine, out var role))
        {
            throw BrokerErrors.FailedPrecondition(BrokerErrors.ApprovalInvalid, "The stored approval request names no downstream credential; ask again.");
        }

        var request = new SecretRequest(approval.TaskId, approval.Phase, engine, role, TimeSpan.FromSeconds(approval.TtlSeconds), null, approval.Justification, context);
        var outcome = await IssueSecretOrRefuseAsync(request, identity, _policy.Current, record, cancellationToken);
        return new ApprovalProgress(record, null, outcome.Secret);
    }

    private static bool IsSecretApproval(ApprovalRequest approval) =>
        approval.Scopes.Count == 1 && SecretGrant.TryParseApprovalScope(approval.Scopes[0], out _, out _);

    private async Task<SecretOutcome> IssueSecretOrRefuseAsync(SecretRequest request, WorkloadIdentity identity, BrokerPolicy policy, ApprovalRecord? approved, CancellationToken cancellationToken)
    {
        try
        {
            return await IssueSecretAttestedAsync(request, identity, policy, approved, cancellationToken);
        }
        catch (BrokerException ex) when (ex.Reason != BrokerErrors.AuditUnavailable)
        {
            var refusal = SecretEvent(AuditEventTypes.SecretRefused, request, identity, policy) with { Outcome = AuditOutcomes.Failure, Reason = ex.Reason };
            refusal = ex.Metadata.TryGetValue("signal_id", out var signal) ? refusal with { Detail = "signal " + signal } : refusal;
            if (await AuditRefusalAsync(refusal, Refusals.RefusalSource.FromWorkload(Refusals.RefusalDoors.Issuance, identity.WorkloadId, request.Context.Peer), ex, cancellationToken) is { } limited)
            {
                throw limited;
            }

            throw;
        }
    }

    private async Task<SecretOutcome> IssueSecretAttestedAsync(SecretRequest request, WorkloadIdentity identity, BrokerPolicy policy, ApprovalRecord? approved, CancellationToken cancellationToken)
    {
        var secrets = _secrets ?? throw SecretErrors.EngineUnavailable(request.Engine, "this broker runs no secret engines");
        _revocations.EnsureIssuanceAllowed();
        RequestValidator.ValidateTaskId(request.TaskId);
        var phase = RequestValidator.ValidatePhase(request.Phase);
        SecretPolicyDecision.ValidateNames(request.Engine, request.Role);
        RequestValidator.ValidateTtl(request.RequestedTtl);
        var justification = RequestValidator.ValidateText(request.Justification, "justification", IssuanceOptions.MaxJustificationLength);
        var now = _time.GetUtcNow();
        if (_revocations.Index.IsRevoked(new Broker.Revocation.TokenFacts("", identity.WorkloadId, request.TaskId, phase.ToWire(), now), out var revokedBy)
            && revokedBy == Broker.Revocation.RevocationKind.Task)
        {
            throw BrokerErrors.FailedPrecondition(BrokerErrors.TaskEnded, "The task has ended; start a new task.");
        }

        var (phaseRule, grant) = SecretPolicyDecision.Authorize(policy, identity, phase, request.Engine, request.Role);
        await _risk.CheckAsync(identity.WorkloadId, request.TaskId, phase, phaseRule, cancellationToken);
        var maxTtl = grant.MaxLeaseTtl < _options.MaxTokenLifetime ? grant.MaxLeaseTtl : _options.MaxTokenLifetime;
        var ttl = request.RequestedTtl ?? maxTtl;
        if (ttl > maxTtl)
        {
            throw BrokerErrors.PermissionDenied(
                BrokerErrors.TtlExceedsPolicy,
                $"requested_ttl exceeds the phase's max_lease_ttl of {(int)maxTtl.TotalSeconds}s.",
                new Dictionary<string, string> { ["max_ttl_seconds"] = ((int)maxTtl.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture) });
        }

        if (grant.Gate is { } gate && approved is null)
        {
            // The same approval store, approvers and stream as a gated scope; the grant is its one "scope".
            var asked = new IssueRequest(request.TaskId, phase, [grant.ApprovalScope], SecretGrant.ApprovalAudienceFor(grant.Engine), ttl, null, null, justification, request.Context);
            return new SecretOutcome(null, await _approvals.RequestAsync(identity, policy, asked, phase, [grant.ApprovalScope], ttl, justification, [gate], cancellationToken));
        }

        var engine = secrets.Engines.For(policy.FindSecretEngine(grant.Engine)!);
        now = new DateTimeOffset(now.Ticks - (now.Ticks % TimeSpan.TicksPerSecond), TimeSpan.Zero);
        var lease = new SecretLease(SecretLease.NewId(), grant.Engine, grant.Role, SecretLease.NewLogin(), request.TaskId, identity.WorkloadId, phase, now, now + ttl, secrets.Node);
        var record = new IssuanceRecord(lease.LeaseId, request.TaskId, identity.WorkloadId, phase, now, lease.ExpiresAt, _options.TaskRetention, _options.MaxTasksPerWorkload);
        if (approved is not null)
        {
            await _approvals.ConsumeAsync(approved, lease.LeaseId, identity, request.Context, cancellationToken);
        }

        // Task ownership and the phase change first: a refused task never reaches the engine.
        await RecordLeaseIssuanceAsync(record, policy, identity, phase, request.Context, cancellationToken);
        var login = await secrets.OpenAsync(lease, engine, cancellationToken);

        // A revocation this node applied while the login was being made: the reaper may have read
        // the leases before this one was recorded, so end it here rather than hand it out.
        if (_revocations.Index.IsRevoked(lease.Facts, out _))
        {
            await secrets.EndQuietlyAsync(lease, LeaseEnd.Voided("revoked while being issued"));
            throw BrokerErrors.FailedPrecondition(BrokerErrors.TaskEnded, "The lease was revoked while it was being issued.");
        }

        var issued = SecretEvent(AuditEventTypes.SecretIssued, request, identity, policy) with
        {
            Phase = phase.ToWire(),
            LeaseId = lease.LeaseId,
            Engine = lease.Engine,
            Role = lease.Role,
            ExpiresAt = lease.ExpiresAt,
            Detail = AuditText.Bound(justification, IssuanceOptions.MaxJustificationLength),
            ApprovalId = approved?.Request.Id,
            ApprovalDigest = approved?.Request.Digest,
        };
        if (await _audit.TryAppendAsync(issued, cancellationToken) is { } auditFailure)
        {
            // Never handed out: drop the login and its lease record so no half-issued state remains.
            await secrets.EndQuietlyAsync(lease, LeaseEnd.Voided(BrokerErrors.AuditUnavailable));
            throw auditFailure as BrokerException ?? BrokerErrors.Unavailable(BrokerErrors.AuditUnavailable, "The audit log cannot be written; issuance is paused.", auditFailure);
        }

        Log.SecretIssued(_logger, lease.LeaseId, lease.Engine, lease.Role, identity.WorkloadId, request.TaskId, phase.ToWire());
        return new SecretOutcome(new IssuedSecret(login, lease.LeaseId, lease.ExpiresAt, lease.Engine, lease.Role, phase, identity.WorkloadId, policy.Digest, approved?.Request.Id), null);
    }

    // As the token path records a token: claims the task, and a phase change first ends the earlier
    // phase's credentials (tokens and leases alike) unless policy keeps them.
    private async Task RecordLeaseIssuanceAsync(IssuanceRecord record, BrokerPolicy policy, WorkloadIdentity identity, TaskPhase phase, RequestContext context, CancellationToken cancellationToken)
    {
        var outcome = await SharedState.CallAsync(_metrics, "credential.record_issuance", () => _store.RecordIssuanceAsync(record, cancellationToken));
        if (outcome.Status == IssuanceStatus.PhaseChangePending && outcome.PreviousPhase is { } left)
        {
            outcome = await MovePhaseAsync(record, left, LeavingRevokes(policy, identity, left), context, cancellationToken);
        }

        switch (outcome.Status)
        {
            case IssuanceStatus.TaskEnded:
                throw BrokerErrors.FailedPrecondition(BrokerErrors.TaskEnded, "The task has ended; start a new task.");
            case IssuanceStatus.TaskNotOwned:
                throw BrokerErrors.PermissionDenied(BrokerErrors.TaskNotOwned, "The task belongs to another workload.");
            case IssuanceStatus.TaskLimitReached:
                throw TaskLimitReached();
        }
    }

    private AuditEvent SecretEvent((int Id, string Name) type, SecretRequest request, WorkloadIdentity identity, BrokerPolicy policy) => new()
    {
        EventId = type.Id,
        Type = type.Name,
        Time = _time.GetUtcNow(),
        CorrelationId = request.Context.CorrelationId,
        PolicyDigest = policy.Digest,
        Outcome = AuditOutcomes.Success,
        Subject = identity.WorkloadId,
        AttestationKind = identity.Kind.ToString(),
        TrustSource = identity.TrustSource,
        TaskId = AuditText.Bound(request.TaskId, IssuanceOptions.MaxTaskIdLength),
        Phase = request.Phase?.ToWire(),
        Engine = AuditText.Bound(request.Engine, PolicyLoader.MaxAgentNameLength),
        Role = AuditText.Bound(request.Role, 63),
        Peer = request.Context.Peer,
    };

    private static partial class Log
    {
        [LoggerMessage(EventId = 2520, Level = LogLevel.Information, Message = "Issued lease {LeaseId} on {Engine} as {Role} to {Subject} for task {TaskId} phase {Phase}")]
        public static partial void SecretIssued(ILogger logger, string leaseId, string engine, string role, string subject, string taskId, string phase);
    }
}
