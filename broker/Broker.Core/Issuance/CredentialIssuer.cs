using Broker.Core.Approvals;
using Broker.Core.Attestation;
using Broker.Core.Audit;
using Broker.Core.Diagnostics;
using Broker.Core.Errors;
using Broker.Core.Policy;
using Broker.Core.Refusals;
using Broker.Core.Revocation;
using Broker.Core.Risk;
using Broker.Core.Signing;
using Broker.Core.State;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Broker.Core.Issuance;

/// <summary>
/// The issuance path: attest, check the request, apply policy, record, sign, audit, answer.
/// Nothing is recorded for a refused request, and nothing is answered before it is audited.
/// </summary>
public sealed partial class CredentialIssuer
{
    private readonly IWorkloadAttestor _attestor;
    private readonly BrokerMetrics _metrics;
    private readonly IPolicyProvider _policy;
    private readonly ICredentialStore _store;
    private readonly IAuditSink _audit;
    private readonly RefusalAuditor _refusals;
    private readonly RevocationFeed _revocations;
    private readonly Revoker _revoker;
    private readonly RiskGate _risk;
    private readonly ApprovalService _approvals;
    private readonly TokenMinter _minter;
    private readonly IssuanceOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<CredentialIssuer> _logger;
    private readonly Secrets.SecretLeases? _secrets;
    private readonly DpopVerifier? _dpop;
    private readonly TokenIntrospector? _introspector;
    private readonly TaskMemory? _memory;

    public CredentialIssuer(
        IWorkloadAttestor attestor,
        IPolicyProvider policy,
        ICredentialStore store,
        IAuditSink audit,
        RefusalAuditor refusals,
        RevocationFeed revocations,
        Revoker revoker,
        RiskGate risk,
        ApprovalService approvals,
        SigningKeyRing keys,
        IOptions<IssuanceOptions> options,
        TimeProvider time,
        ILogger<CredentialIssuer> logger,
        BrokerMetrics metrics,
        Secrets.SecretLeases? secrets = null,
        DpopVerifier? dpop = null,
        TokenIntrospector? introspector = null)
    {
        _introspector = introspector;
        _secrets = secrets;
        _dpop = dpop;
        _metrics = metrics;
        _attestor = attestor;
        _policy = policy;
        _store = store;
        _audit = audit;
        _refusals = refusals;
        _revocations = revocations;
        _revoker = revoker;
        _risk = risk;
        _approvals = approvals;
        _options = options.Value;
        _minter = new TokenMinter(keys, _options.Issuer);
        _time = time;
        _logger = logger;
        if (_options.RepeatFromMemory)
        {
            _memory = new TaskMemory(revocations, time, _options.RepeatFromMemoryMaxTasks);
            _memory.MintedAfterPhaseRevocation += RevokePhaseAgain;
            _policy.Changed += _ => _memory.Clear();
            _store.Interrupted += _memory.Clear;
        }
    }

    /// <summary>Tasks this node confirmed, when repeat issuances are decided from memory; else null.</summary>
    internal TaskMemory? Memory => _memory;

    /// <summary>
    /// A token minted from memory raced a revocation of its phase (a move made elsewhere) and is
    /// newer than it: revoke the phase once more, so no token of the phase left stays accepted.
    /// </summary>
    private void RevokePhaseAgain(string taskId, TaskPhase phase, DateTimeOffset lastMinted) => _ = Task.Run(async () =>
    {
        // Tried until the index holds a revocation covering the token (one that replicas have not
        // confirmed is in force here, and an epoch loss is covered by the restore's cut-off), or
        // every token it would cover has expired anyway.
        var giveUpAt = _time.GetUtcNow() + _options.MaxTokenLifetime;
        while (!_revocations.Index.IsTaskOrPhaseRevoked(taskId, phase.ToWire(), lastMinted))
        {
            try
            {
                await _revoker.RevokeInternalAsync(
                    Broker.Revocation.RevocationSelector.ForTaskPhase(taskId, phase.ToWire()),
                    $"a token for {phase.ToWire()} issued from node memory is newer than a revocation of that phase",
                    new RequestContext("task-memory-" + taskId, null),
                    CancellationToken.None);
                return;
            }
            catch (Exception ex) when (_time.GetUtcNow() < giveUpAt)
            {
                Log.PhaseRevokeAgainFailed(_logger, taskId, phase.ToWire(), ex);
                await Task.Delay(TimeSpan.FromSeconds(1), _time);
            }
            catch (Exception ex)
            {
                Log.PhaseRevokeAgainFailed(_logger, taskId, phase.ToWire(), ex);
                return;
            }
        }
    });

    /// <summary>
    /// Moves the task on from <paramref name="left"/> (shared state answered a phase change). The
    /// earlier phase's credentials end durably before the task changes phase: if that fails,
    /// nothing moved and the next request tries again. They end once more after the write: an
    /// issuance at another node that read the old phase between the two steps minted a token
    /// newer than the first revocation. When the phase left keeps its tokens, the move is
    /// announced on the revocation log instead, also before the write.
    /// </summary>
    private async Task<IssuanceOutcome> MovePhaseAsync(IssuanceRecord record, TaskPhase left, bool leavingRevokes, RequestContext context, CancellationToken cancellationToken)
    {
        var selector = Broker.Revocation.RevocationSelector.ForTaskPhase(record.TaskId, left.ToWire());
        var reason = $"task moved from {left.ToWire()} to {record.Phase.ToWire()}";

        // Tokens this node mints from memory for the phase left are older than what is appended below.
        _memory?.Forget(record.TaskId);
        if (leavingRevokes)
        {
            await _revoker.RevokeInternalAsync(selector, reason, context, cancellationToken);
        }
        else
        {
            // Nothing to revoke, but nodes deciding repeat issuances from memory must stop serving
            // the phase left: told before the write, so no read made after it is remembered.
            var move = await _revoker.AnnounceMoveAsync(record.TaskId, left, cancellationToken);

            // As a revocation is applied here at once: a read racing the write on this node too.
            _memory?.OnMoved([move]);
        }

        var outcome = await SharedState.CallAsync(_metrics, "credential.record_issuance", () => _store.RecordIssuanceAsync(record with { PhaseChangeConfirmed = true }, cancellationToken));
        if (leavingRevokes && outcome.Status == IssuanceStatus.Recorded)
        {
            await _revoker.RevokeInternalAsync(selector, reason + " (after the phase was written)", context, cancellationToken);
        }

        return outcome;
    }

    /// <summary>Issues a credential, or, when the request names a gated scope, opens an approval request and answers pending.</summary>
    public Task<IssueOutcome> IssueAsync(IssueRequest request, CancellationToken cancellationToken) =>
        ObservedAsync(request, null, async activity =>
        {
            var policy = _policy.Current;

            // Before attestation: a nonce challenge must not consume a single-use workload proof.
            if (request.Dpop is { } dpop)
            {
                request = request with { PopPublicKeyJwk = await ProvePossessionAsync(request, dpop, policy, cancellationToken), Dpop = null };
            }

            var identity = await AttestAsync(request.Evidence, request.Context, policy.Digest, cancellationToken);
            activity?.SetTag("broker.agent", identity.WorkloadId);
            return await IssueOrRefuseAsync(request, identity, policy, null, cancellationToken);
        });

    /// <summary>
    /// Checks the DPoP proof and returns its public key, which the token is then bound to
    /// (<c>cnf.jkt</c>). A refusal is audited, except the nonce challenge, which is a protocol step.
    /// </summary>
    private async Task<string> ProvePossessionAsync(IssueRequest request, DpopPresentation dpop, BrokerPolicy policy, CancellationToken cancellationToken)
    {
        try
        {
            var verifier = _dpop ?? throw BrokerErrors.InvalidArgument(BrokerErrors.DpopProofInvalid, "This broker does not accept DPoP proofs.");
            return (await verifier.VerifyAsync(dpop, cancellationToken)).PublicJwk;
        }
        catch (BrokerException ex) when (ex.Reason != BrokerErrors.DpopNonceRequired && ex.Kind != FailureKind.Unavailable)
        {
            var refusal = Refusal(request, identity: null, policy, ex.Reason) with
            {
                Phase = null,
                Scopes = null,
                Detail = "DPoP proof refused before attestation",
            };
            if (await AuditRefusalAsync(refusal, RefusalSource.FromPeer(RefusalDoors.Dpop, request.Context.Peer), ex, cancellationToken) is { } limited)
            {
                throw limited;
            }

            throw;
        }
    }

    /// <summary>
    /// One issuance as operators see it: a <c>broker.issue</c> span and the issuance histogram by
    /// phase and outcome (issued, pending, refused, cancelled, error).
    /// </summary>
    private async Task<IssueOutcome> ObservedAsync(IssueRequest request, string? approvalId, Func<System.Diagnostics.Activity?, Task<IssueOutcome>> issue)
    {
        var phase = request.Phase?.ToWire() ?? "unspecified";
        using var activity = BrokerActivity.Source.StartActivity("broker.issue");
        activity?.SetTag("broker.phase", phase);
        activity?.SetTag("broker.task_id", AuditText.Bound(request.TaskId, IssuanceOptions.MaxTaskIdLength));
        activity?.SetTag("broker.approval_id", approvalId);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var outcome = "error";
        try
        {
            var result = await issue(activity);
            outcome = result.Pending is null ? "issued" : "pending";
            activity?.SetTag("broker.token_id", result.Credential?.TokenId);
            activity?.SetTag("broker.approval_id", result.Pending?.Id ?? approvalId);
            return result;
        }
        catch (BrokerException ex)
        {
            outcome = "refused";
            activity?.SetTag("broker.reason", ex.Reason);
            activity?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, ex.Reason);
            throw;
        }
        catch (OperationCanceledException)
        {
            // The caller went away (deadline or cancel): not a broker fault.
            outcome = "cancelled";
            throw;
        }
        finally
        {
            activity?.SetTag("broker.outcome", outcome);
            _metrics.IssuanceCompleted(phase, outcome, System.Diagnostics.Stopwatch.GetElapsedTime(started));
        }
    }

    /// <summary>Proves the identity of an agent about to wait on an approval (once per wait: proofs may be single-use).</summary>
    public Task<WorkloadIdentity> AttestWaiterAsync(AttestationEvidence? evidence, RequestContext context, CancellationToken cancellationToken) =>
        AttestAsync(evidence, context, _policy.Current.Digest, cancellationToken);

    /// <summary>
    /// Where the agent's approval stands. Once approved, issues the token for exactly the stored
    /// request (policy, revocation state and risk are checked again; approval never overrides
    /// them) and consumes the approval. Denied, expired or already used: a refusal saying so.
    /// </summary>
    public async Task<ApprovalProgress> CheckApprovalAsync(string approvalId, WorkloadIdentity identity, RequestContext context, CancellationToken cancellationToken)
    {
        var record = await _approvals.GetAsync(approvalId, context, cancellationToken);
        var approval = record.Request;
        if (!string.Equals(approval.Agent, identity.WorkloadId, StringComparison.Ordinal))
        {
            throw BrokerErrors.PermissionDenied(BrokerErrors.ApprovalNotYours, "This approval request belongs to another workload.");
        }

        switch (record.StatusAt(_time.GetUtcNow()))
        {
            case ApprovalStatus.Pending:
                return new ApprovalProgress(record, null);
            case ApprovalStatus.Denied:
                throw BrokerErrors.FailedPrecondition(BrokerErrors.ApprovalDenied, $"Denied by {record.DecidedBy}: {record.Reason}");
            case ApprovalStatus.Expired:
                throw BrokerErrors.FailedPrecondition(BrokerErrors.ApprovalExpired, "The approval request expired before it was approved and used; ask again.");
            case ApprovalStatus.Consumed:
                throw BrokerErrors.FailedPrecondition(BrokerErrors.ApprovalConsumed, "The approval was already used for a credential; it is single-use.");
        }

        if (!approval.DigestMatches())
        {
            throw BrokerErrors.FailedPrecondition(BrokerErrors.ApprovalInvalid, "The stored approval request does not match its digest; ask again.");
        }

        if (_secrets is not null && IsSecretApproval(approval))
        {
            return await RedeemSecretApprovalAsync(record, identity, context, cancellationToken);
        }

        var request = new IssueRequest(
            approval.TaskId,
            approval.Phase,
            approval.Scopes,
            approval.Audience,
            TimeSpan.FromSeconds(approval.TtlSeconds),
            null,
            approval.PopPublicKeyJwk,
            approval.Justification,
            context);
        var outcome = await ObservedAsync(request, approval.Id, activity =>
        {
            activity?.SetTag("broker.agent", identity.WorkloadId);
            return IssueOrRefuseAsync(request, identity, _policy.Current, record, cancellationToken);
        });
        return new ApprovalProgress(record, outcome.Credential);
    }

    /// <param name="delegation">The subject token when this is an exchange down to <paramref name="identity"/> (a sub-agent).</param>
    private async Task<IssueOutcome> IssueOrRefuseAsync(IssueRequest request, WorkloadIdentity identity, BrokerPolicy policy, ApprovalRecord? approved, CancellationToken cancellationToken, SubjectToken? delegation = null)
    {
        try
        {
            return await IssueAttestedAsync(request, identity, policy, approved, delegation, cancellationToken);
        }
        catch (BrokerException ex) when (ex.Reason != BrokerErrors.AuditUnavailable)
        {
            // A risk refusal names its signal by id (never its evidence).
            var refusal = Refusal(request, identity, policy, ex.Reason);
            refusal = ex.Metadata.TryGetValue("signal_id", out var signal) ? refusal with { Detail = "signal " + signal } : refusal;
            refusal = delegation is null ? refusal : AsDelegation(refusal, delegation, identity.WorkloadId, issued: false);
            var door = delegation is null ? RefusalDoors.Issuance : RefusalDoors.Delegation;
            if (await AuditRefusalAsync(refusal, RefusalSource.FromWorkload(door, identity.WorkloadId, request.Context.Peer), ex, cancellationToken) is { } limited)
            {
                throw limited;
            }

            throw;
        }
    }

    public async Task<DateTimeOffset> EndTaskAsync(EndTaskRequest request, CancellationToken cancellationToken)
    {
        var policy = _policy.Current;
        var identity = await AttestAsync(request.Evidence, request.Context, policy.Digest, cancellationToken);
        var auditEvent = new AuditEvent
        {
            EventId = AuditEventTypes.TaskEnded.Id,
            Type = AuditEventTypes.TaskEnded.Name,
            Time = _time.GetUtcNow(),
            CorrelationId = request.Context.CorrelationId,
            PolicyDigest = policy.Digest,
            Outcome = AuditOutcomes.Success,
            Subject = identity.WorkloadId,
            AttestationKind = identity.Kind.ToString(),
            TrustSource = identity.TrustSource,
            TaskId = AuditText.Bound(request.TaskId, IssuanceOptions.MaxTaskIdLength),
            Actor = identity.WorkloadId,
            Peer = request.Context.Peer,
        };

        EndTaskOutcome outcome;
        try
        {
            RequestValidator.ValidateTaskId(request.TaskId);
            var reason = RequestValidator.ValidateText(request.Reason, "reason", IssuanceOptions.MaxJustificationLength);
            auditEvent = auditEvent with { Detail = AuditText.Bound(reason, IssuanceOptions.MaxJustificationLength) };
            outcome = await SharedState.CallAsync(_metrics, "credential.end_task", () => _store.EndTaskAsync(request.TaskId, identity.WorkloadId, _time.GetUtcNow(), _options.TaskRetention, cancellationToken));
            switch (outcome.Status)
            {
                case EndTaskStatus.NotFound:
                    throw new BrokerException(FailureKind.NotFound, "TASK_NOT_FOUND", "No such task.");
                case EndTaskStatus.NotOwned:
                    throw BrokerErrors.PermissionDenied(BrokerErrors.TaskNotOwned, "The task belongs to another workload.");
            }
        }
        catch (BrokerException ex)
        {
            var refusal = auditEvent with
            {
                EventId = AuditEventTypes.TaskEndRefused.Id,
                Type = AuditEventTypes.TaskEndRefused.Name,
                Outcome = AuditOutcomes.Failure,
                Reason = ex.Reason,
            };
            if (await AuditRefusalAsync(refusal, RefusalSource.FromWorkload(RefusalDoors.EndTask, identity.WorkloadId, request.Context.Peer), ex, cancellationToken) is { } limited)
            {
                throw limited;
            }

            throw;
        }

        // The revocation comes before the task.ended record: it is what ends the task at every
        // node (one that issues from memory never reads the ended mark), so a failed audit write
        // must not hold it back. Idempotent: ending again re-asserts the revocation only if the
        // first attempt failed after the task was marked ended. Once this node holds the task's
        // revocation, a repeat appends nothing, so calling EndTask in a loop cannot grow the log.
        _memory?.Forget(request.TaskId);
        if (outcome.Status == EndTaskStatus.Ended || !TaskRevokedHere(identity.WorkloadId, request.TaskId))
        {
            await _revoker.RevokeInternalAsync(Broker.Revocation.RevocationSelector.ForTask(request.TaskId), "task ended by its agent", request.Context, cancellationToken);
        }

        if (outcome.Status == EndTaskStatus.Ended)
        {
            await _audit.AppendOrFailAsync(auditEvent with { Time = outcome.EndedAt ?? _time.GetUtcNow() }, "The task is ended, but its audit record could not be written.", cancellationToken);
        }

        return outcome.EndedAt ?? _time.GetUtcNow();
    }

    private async Task<IssueOutcome> IssueAttestedAsync(IssueRequest request, WorkloadIdentity identity, BrokerPolicy policy, ApprovalRecord? approved, SubjectToken? delegation, CancellationToken cancellationToken)
    {
        // Never hand out a token while this node might not know about a revocation, or while frozen.
        _revocations.EnsureIssuanceAllowed();
        RequestValidator.ValidateTaskId(request.TaskId);
        var phase = request.Phase is null && request.PhaseFromPolicy
            ? PolicyDecision.DefaultPhase(policy, identity)
            : RequestValidator.ValidatePhase(request.Phase);
        var scopes = RequestValidator.ValidateScopes(request.Scopes);
        RequestValidator.ValidateAudience(request.Audience);
        RequestValidator.ValidateTtl(request.RequestedTtl);
        var justification = RequestValidator.ValidateText(request.Justification, "justification", IssuanceOptions.MaxJustificationLength);
        var jkt = string.IsNullOrEmpty(request.PopPublicKeyJwk) ? null : ProofOfPossessionKey.Thumbprint(request.PopPublicKeyJwk);

        // A revoked task is ended even when the task record saying so was lost (a Redis failover
        // can drop that write; the revocation itself waited for replicas). The index answers in
        // O(1) from memory, before a revoked task can reach risk, approvers or shared state.
        if (TaskRevokedHere(identity.WorkloadId, request.TaskId))
        {
            throw BrokerErrors.FailedPrecondition(BrokerErrors.TaskEnded, "The task has ended; start a new task.");
        }

        if (delegation is not null)
        {
            DelegationDecision.Authorize(policy, delegation, identity, phase, scopes, request.Audience);
        }

        var phaseRule = PolicyDecision.Authorize(policy, identity, phase, scopes, request.Audience);
        await _risk.CheckAsync(identity.WorkloadId, request.TaskId, phase, phaseRule, cancellationToken);
        var maxTtl = phaseRule.MaxTtl < _options.MaxTokenLifetime ? phaseRule.MaxTtl : _options.MaxTokenLifetime;
        var ttl = request.RequestedTtl ?? maxTtl;
        if (ttl > maxTtl)
        {
            throw BrokerErrors.PermissionDenied(
                BrokerErrors.TtlExceedsPolicy,
                $"requested_ttl exceeds the phase maximum of {(int)maxTtl.TotalSeconds}s.",
                new Dictionary<string, string> { ["max_ttl_seconds"] = ((int)maxTtl.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture) });
        }

        // Gated scopes wait for people: the answer is a pending request for exactly this issuance.
        var gates = ApprovalService.GatesFor(phaseRule, scopes);
        if (gates.Count > 0 && delegation is not null)
        {
            // An approval is redeemed for exactly the stored request, which has no room for a chain: fail closed.
            throw BrokerErrors.PermissionDenied(BrokerErrors.DelegationApprovalUnsupported, "A delegated token cannot carry scopes gated behind approval; ask for them with IssueCredential.");
        }

        if (gates.Count > 0 && approved is null)
        {
            return new IssueOutcome(null, await _approvals.RequestAsync(identity, policy, request, phase, scopes, ttl, justification, gates, cancellationToken));
        }

        var now = _time.GetUtcNow();
        now = new DateTimeOffset(now.Ticks - (now.Ticks % TimeSpan.TicksPerSecond), TimeSpan.Zero);

        // A delegated token is the task owner's (sub) held by the sub-agent (act), and never
        // outlives the token it was exchanged from.
        var chain = delegation?.ExtendTo(identity.WorkloadId);
        var subjectId = chain?.Owner ?? identity.WorkloadId;
        var expiresAt = delegation is not null && delegation.ExpiresAt < now + ttl ? delegation.ExpiresAt : now + ttl;
        var claims = new TokenClaims(
            TokenMinter.NewTokenId(),
            subjectId,
            request.Audience,
            scopes,
            request.TaskId,
            phase,
            policy.Digest,
            now,
            expiresAt,
            jkt,
            identity.CertificateThumbprint,
            approved?.Request.Id,
            chain);
        var record = new IssuanceRecord(
            claims.TokenId,
            request.TaskId,
            subjectId,
            phase,
            claims.IssuedAt,
            claims.ExpiresAt,
            _options.TaskRetention,
            _options.MaxTasksPerWorkload,
            Delegated: chain is not null);

        var issued = new AuditEvent
        {
            EventId = AuditEventTypes.CredentialIssued.Id,
            Type = AuditEventTypes.CredentialIssued.Name,
            Time = _time.GetUtcNow(),
            CorrelationId = request.Context.CorrelationId,
            PolicyDigest = policy.Digest,
            Outcome = AuditOutcomes.Success,
            Subject = identity.WorkloadId,
            AttestationKind = identity.Kind.ToString(),
            TrustSource = identity.TrustSource,
            TaskId = request.TaskId,
            Phase = phase.ToWire(),
            TokenId = claims.TokenId,
            Scopes = scopes,
            Audience = request.Audience,
            ExpiresAt = claims.ExpiresAt,
            Detail = AuditText.Bound(justification, IssuanceOptions.MaxJustificationLength),
            Peer = request.Context.Peer,
            ApprovalId = approved?.Request.Id,
            ApprovalDigest = approved?.Request.Digest,
        };
        issued = delegation is null ? issued : AsDelegation(issued, delegation, identity.WorkloadId, issued: true);

        if (approved is not null)
        {
            // Single use, atomically across nodes: only the caller that consumes it gets a token.
            await _approvals.ConsumeAsync(approved, claims.TokenId, identity, request.Context, cancellationToken);
        }

        // The shared-state write, the durable audit write and the signature are independent, so
        // they run together: a request waits for one disk flush, not two in a row. If shared
        // state then refuses, a credential.voided record follows: that token was never handed out.
        // With Broker:Issuance:RepeatFromMemory, a repeat issuance for a task this node confirmed,
        // in the same phase, is decided from that confirmation (TaskMemory says what keeps it true).
        var rememberable = _memory is not null && chain is null && approved is null;
        // The feed is checked again here: risk and approvals may have waited since the first check.
        var remembered = rememberable && _revocations.IsCurrent
            ? _memory!.Find(request.TaskId, identity.WorkloadId, phase, policy.Digest)
            : null;
        remembered?.NoteMinted(claims.IssuedAt);
        var fromMemory = remembered is { IsClosed: false };
        var askedAt = _time.GetUtcNow();
        var recording = fromMemory
            ? Task.FromResult(new IssuanceOutcome(IssuanceStatus.Recorded, phase))
            : SharedState.CallAsync(_metrics, "credential.record_issuance", () => _store.RecordIssuanceAsync(record, cancellationToken));
        var auditing = _audit.TryAppendAsync(issued, cancellationToken);
        var token = _minter.Mint(claims);
        IssuanceOutcome outcome;
        try
        {
            outcome = await recording;
            if (outcome.Status == IssuanceStatus.PhaseChangePending && outcome.PreviousPhase is { } left)
            {
                askedAt = _time.GetUtcNow();
                outcome = await MovePhaseAsync(record, left, LeavingRevokes(policy, identity, left), request.Context, cancellationToken);
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

            if (rememberable && !fromMemory)
            {
                _memory!.Confirmed(request.TaskId, identity.WorkloadId, phase, askedAt, policy.Digest, !LeavingRevokes(policy, identity, phase));
            }
        }
        catch (BrokerException refused)
        {
            if (await auditing is null)
            {
                await AuditRefusalAsync(issued with { EventId = AuditEventTypes.CredentialVoided.Id, Type = AuditEventTypes.CredentialVoided.Name, Outcome = AuditOutcomes.Failure, Reason = refused.Reason, Time = _time.GetUtcNow() }, cancellationToken);
            }

            throw;
        }

        if (await auditing is { } auditFailure)
        {
            // The caller never receives this token. Shared state holds nothing per token, so nothing
            // half-issued remains (the task's claim or phase move stands, as a refusal would leave it).
            throw auditFailure as BrokerException ?? BrokerErrors.Unavailable(BrokerErrors.AuditUnavailable, "The audit log cannot be written; issuance is paused.", auditFailure);
        }

        if (fromMemory)
        {
            _metrics.IssuedFromMemory();
        }

        if (chain is null)
        {
            Log.Issued(_logger, claims.TokenId, identity.WorkloadId, request.TaskId, phase.ToWire());
        }
        else
        {
            Log.Delegated(_logger, claims.TokenId, identity.WorkloadId, delegation!.TokenId, chain.Depth, request.TaskId);
        }

        return new IssueOutcome(new IssuedCredential(token, claims.TokenId, scopes, claims.ExpiresAt, subjectId, phase, policy.Digest, jkt is null ? "Bearer" : "DPoP", approved?.Request.Id), null);
    }

    // Built only when a request is refused: the success path never pays for it. Without an
    // identity, the request was refused before attestation (a DPoP proof).
    private AuditEvent Refusal(IssueRequest request, WorkloadIdentity? identity, BrokerPolicy policy, string reason) => new()
    {
        EventId = AuditEventTypes.CredentialRefused.Id,
        Type = AuditEventTypes.CredentialRefused.Name,
        Time = _time.GetUtcNow(),
        CorrelationId = request.Context.CorrelationId,
        PolicyDigest = policy.Digest,
        Outcome = AuditOutcomes.Failure,
        Reason = reason,
        Subject = identity?.WorkloadId,
        AttestationKind = identity?.Kind.ToString(),
        TrustSource = identity?.TrustSource,
        TaskId = AuditText.Bound(request.TaskId, IssuanceOptions.MaxTaskIdLength),
        Phase = request.Phase?.ToWire(),
        Scopes = request.Scopes.Take(IssuanceOptions.MaxScopes).Select(s => AuditText.Bound(s, IssuanceOptions.MaxScopeLength)!).ToArray(),
        Audience = AuditText.Bound(request.Audience, IssuanceOptions.MaxAudienceLength),
        Peer = request.Context.Peer,
    };

    private BrokerException TaskLimitReached() =>
        new(FailureKind.ResourceExhausted, BrokerErrors.TaskLimitReached, $"This workload already holds {_options.MaxTasksPerWorkload} tasks; end tasks it no longer needs, or reuse one.");

    /// <summary>Whether this node's revocation index holds a revocation of the whole task (answered from memory).</summary>
    private bool TaskRevokedHere(string workloadId, string taskId) =>
        _revocations.Index.IsRevoked(new Broker.Revocation.TokenFacts("", workloadId, taskId, "", _time.GetUtcNow()), out var revokedBy)
        && revokedBy == Broker.Revocation.RevocationKind.Task;

    private static bool LeavingRevokes(BrokerPolicy policy, WorkloadIdentity identity, TaskPhase left) =>
        !(policy.FindRule(identity) is { } rule && rule.Phases.TryGetValue(left, out var leftRule) && leftRule.KeepTokensOnExit);

    private async Task<WorkloadIdentity> AttestAsync(AttestationEvidence? evidence, RequestContext context, string policyDigest, CancellationToken cancellationToken)
    {
        // A caller whose refusals spent its budget gets no more signature checks until it
        // refills, unless its proof was validated before (an agent reusing its SVID). Counted,
        // not audited one by one, and outside the try: it is not an attestation refusal.
        if (evidence is not null && _refusals.ShedIfSpent(RefusalDoors.Attestation, context.Peer, static s => s.Attestor.HasValidated(s.Evidence), (Attestor: _attestor, Evidence: evidence)) is { } shed)
        {
            throw shed;
        }

        try
        {
            if (evidence is null)
            {
                throw BrokerErrors.Attestation(BrokerErrors.AttestationMissing, "An attestation proof is required.");
            }

            var identity = await _attestor.AttestAsync(evidence, cancellationToken);
            await SingleUseProofs.ClaimAsync(_store, _metrics, identity, cancellationToken);
            return identity;
        }
        catch (BrokerException ex)
        {
            var refusal = new AuditEvent
            {
                EventId = AuditEventTypes.AttestationRefused.Id,
                Type = AuditEventTypes.AttestationRefused.Name,
                Time = _time.GetUtcNow(),
                CorrelationId = context.CorrelationId,
                PolicyDigest = policyDigest,
                Outcome = AuditOutcomes.Failure,
                Reason = ex.Reason,
                AttestationKind = evidence switch
                {
                    JwtSvidEvidence => nameof(AttestationKind.JwtSvid),
                    OidcTokenEvidence => nameof(AttestationKind.OidcToken),
                    X509SvidEvidence => nameof(AttestationKind.X509Svid),
                    _ => null,
                },
                Peer = context.Peer,
            };
            if (await AuditRefusalAsync(refusal, RefusalSource.FromPeer(RefusalDoors.Attestation, context.Peer), ex, cancellationToken) is { } limited)
            {
                throw limited;
            }

            throw;
        }
    }

    /// <summary>
    /// Audits a refusal within its caller's budget; returns the <c>RATE_LIMITED</c> refusal to
    /// answer instead when the budget is spent. A refusal that is the broker's own fault
    /// (a dependency unavailable) never spends the caller's budget.
    /// </summary>
    private async ValueTask<BrokerException?> AuditRefusalAsync(AuditEvent refusal, RefusalSource source, BrokerException refused, CancellationToken cancellationToken)
    {
        if (refused.Kind != FailureKind.Unavailable)
        {
            return await _refusals.AuditAsync(refusal, source, cancellationToken);
        }

        await AuditRefusalAsync(refusal, cancellationToken);
        return null;
    }

    // A refusal is the fail-closed answer already; if it cannot be audited we still refuse, and say so in the log.
    private async Task AuditRefusalAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
    {
        if (await _audit.TryAppendAsync(auditEvent, cancellationToken) is { } ex)
        {
            Log.RefusalNotAudited(_logger, auditEvent.Type, auditEvent.Reason, ex);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2000, Level = LogLevel.Information, Message = "Issued token {TokenId} to {Subject} for task {TaskId} phase {Phase}")]
        public static partial void Issued(ILogger logger, string tokenId, string subject, string taskId, string phase);

        [LoggerMessage(EventId = 2002, Level = LogLevel.Error, Message = "Task {TaskId} left phase {Phase} while this node issued for it from memory, and revoking that phase again failed (retried each second until the tokens it covers have expired)")]
        public static partial void PhaseRevokeAgainFailed(ILogger logger, string taskId, string phase, Exception exception);

        [LoggerMessage(EventId = 2001, Level = LogLevel.Error, Message = "A {EventType} ({Reason}) could not be written to the audit log")]
        public static partial void RefusalNotAudited(ILogger logger, string eventType, string? reason, Exception exception);

        [LoggerMessage(EventId = 2700, Level = LogLevel.Information, Message = "Delegated token {TokenId} to {Actor} from token {ParentTokenId} (depth {Depth}) for task {TaskId}")]
        public static partial void Delegated(ILogger logger, string tokenId, string actor, string parentTokenId, int depth, string taskId);
    }
}
