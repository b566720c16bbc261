using Broker.Core.Attestation;
using Broker.Core.Audit;
using Broker.Core.Diagnostics;
using Broker.Core.Errors;
using Broker.Core.Issuance;
using Broker.Core.Policy;
using Broker.Core.Risk;
using Broker.Core.State;
using Microsoft.Extensions.Logging;

namespace Broker.Core.Approvals;

/// <summary>An operator acting on approvals: their name (from the token's name claim) and groups or roles.</summary>
public sealed record Approver(string Name, IReadOnlyCollection<string> Groups)
{
    /// <summary>How the audit log names them.</summary>
    public string Actor => "operator:" + Name;
}

/// <summary>
/// The approval gate: opens a request when an agent asks for gated scopes, lets approvers
/// approve or deny it, marks it expired, and consumes it once. Every step is audited with the
/// approval id and digest. Issuing the approved token is <see cref="CredentialIssuer"/>'s job.
/// </summary>
public sealed partial class ApprovalService
{
    /// <summary>How long a decided or expired request can still be shown.</summary>
    public static readonly TimeSpan Retention = TimeSpan.FromHours(24);

    public const int MaxReasonLength = 512;

    private readonly IApprovalStore _store;
    private readonly BrokerMetrics _metrics;
    private readonly IApprovalNotifier _notifier;
    private readonly IAuditSink _audit;
    private readonly IRiskStore _risk;
    private readonly TimeProvider _time;
    private readonly ILogger<ApprovalService> _logger;

    public ApprovalService(IApprovalStore store, IAuditSink audit, IRiskStore risk, TimeProvider time, ILogger<ApprovalService> logger, BrokerMetrics metrics, IApprovalNotifier? notifier = null)
    {
        _metrics = metrics;
        _notifier = notifier ?? new NoApprovalNotifier();
        _store = store;
        _audit = audit;
        _risk = risk;
        _time = time;
        _logger = logger;
    }

    /// <summary>The gates of <paramref name="rule"/> that <paramref name="scopes"/> touch.</summary>
    public static IReadOnlyList<GatedScopes> GatesFor(PhaseRule rule, IReadOnlyList<string> scopes) =>
        rule.Gates is not { Count: > 0 } gates ? [] : gates.Where(g => scopes.Any(g.Scopes.Contains)).ToArray();

    /// <summary>Stores a pending request for exactly this issuance and audits <c>approval.requested</c>.</summary>
    internal async Task<ApprovalRequest> RequestAsync(
        WorkloadIdentity identity,
        BrokerPolicy policy,
        IssueRequest request,
        TaskPhase phase,
        IReadOnlyList<string> scopes,
        TimeSpan ttl,
        string? justification,
        IReadOnlyList<GatedScopes> gates,
        CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(justification) && gates.Any(g => g.RequireJustification))
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.JustificationRequired, "Policy requires a justification for these scopes; say why in `justification`.");
        }

        var now = Truncate(_time.GetUtcNow());
        var risk = await CurrentRiskAsync(identity.WorkloadId, request.TaskId, cancellationToken);
        var sorted = scopes.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        var ttlSeconds = (int)ttl.TotalSeconds;
        var text = string.IsNullOrEmpty(justification) ? null : justification;
        var approval = new ApprovalRequest(
            ApprovalRequest.NewId(),
            ApprovalRequest.ComputeDigest(identity.WorkloadId, request.TaskId, phase, sorted, request.Audience, ttlSeconds, risk, text),
            identity.WorkloadId,
            request.TaskId,
            phase,
            sorted,
            request.Audience,
            ttlSeconds,
            risk,
            text,
            string.IsNullOrEmpty(request.PopPublicKeyJwk) ? null : request.PopPublicKeyJwk,
            policy.FindRule(identity)?.Owner,
            policy.Digest,
            now,
            now + gates.Min(g => g.Validity),
            gates.Select(g => new ApprovalGate(g.Scopes.Order(StringComparer.Ordinal).ToArray(), g.Approvers.Order(StringComparer.Ordinal).ToArray(), g.Quorum)).ToArray());

        var confirmed = await SharedState.CallAsync(_metrics, "approval.create", () => _store.CreateAsync(approval, approval.ExpiresAt + Retention, cancellationToken));
        await AuditOrFailAsync(Event(AuditEventTypes.ApprovalRequested, approval, request.Context.CorrelationId, AuditOutcomes.Success) with
        {
            Actor = identity.WorkloadId,
            AttestationKind = identity.Kind.ToString(),
            TrustSource = identity.TrustSource,
            ExpiresAt = approval.ExpiresAt,
            Detail = Unconfirmed(AuditText.Bound(text, IssuanceOptions.MaxJustificationLength), confirmed),
            Peer = request.Context.Peer,
        }, cancellationToken);
        Log.Requested(_logger, approval.Id, identity.WorkloadId, request.TaskId, string.Join(' ', sorted));
        Transitioned("opened", approval, identity.WorkloadId);
        ThrowIfUnconfirmed(confirmed, "approval request");
        return approval;
    }

    /// <summary>Requests still pending, soonest to expire first.</summary>
    public async Task<IReadOnlyList<ApprovalRecord>> ListAsync(int limit, CancellationToken cancellationToken) =>
        await SharedState.CallAsync(_metrics, "approval.list_pending", () => _store.ListPendingAsync(_time.GetUtcNow(), limit, cancellationToken));

    /// <summary>
    /// Marks requests that expired while nobody looked at them, so each still gets its one
    /// <c>approval.expired</c> record (every node sweeps; the store lets one of them win).
    /// </summary>
    public async Task SweepLapsedAsync(int limit, CancellationToken cancellationToken)
    {
        var lapsed = await SharedState.CallAsync(_metrics, "approval.list_lapsed", () => _store.ListLapsedAsync(_time.GetUtcNow(), limit, cancellationToken));
        var context = new RequestContext("approval-sweep", null);
        foreach (var id in lapsed)
        {
            try
            {
                _ = await GetAsync(id, context, cancellationToken);
            }
            catch (BrokerException ex) when (ex.Reason is BrokerErrors.ApprovalNotFound or BrokerErrors.ApprovalIdInvalid)
            {
                // Gone after its retention, or not ours to parse: drop it from the pending index.
                await SharedState.CallAsync(_metrics, "approval.expire", () => _store.ExpireAsync(id, _time.GetUtcNow(), cancellationToken));
            }
        }
    }

    /// <summary>
    /// The request as it stands now. A request found past its expiry is marked expired (and
    /// audited, once across all nodes) here: by whichever waiter, lister or approver sees it
    /// first, or by the sweep (<see cref="SweepLapsedAsync"/>).
    /// </summary>
    public async Task<ApprovalRecord> GetAsync(string id, RequestContext context, CancellationToken cancellationToken)
    {
        CheckId(id);
        var record = await SharedState.CallAsync(_metrics, "approval.get", () => _store.GetAsync(id, cancellationToken))
            ?? throw new BrokerException(FailureKind.NotFound, BrokerErrors.ApprovalNotFound, "No such approval request (it may have been removed after its retention).");
        if (record.Status is ApprovalStatus.Pending or ApprovalStatus.Approved && record.StatusAt(_time.GetUtcNow()) == ApprovalStatus.Expired)
        {
            var change = await SharedState.CallAsync(_metrics, "approval.expire", () => _store.ExpireAsync(id, _time.GetUtcNow(), cancellationToken));
            if (change.Outcome == ApprovalChangeStatus.Applied)
            {
                Transitioned("expired", record.Request, null);
                await AuditOrFailAsync(Event(AuditEventTypes.ApprovalExpired, record.Request, context.CorrelationId, AuditOutcomes.Failure) with { Reason = BrokerErrors.ApprovalExpired }, cancellationToken);
            }

            record = record with { Status = ApprovalStatus.Expired };
        }

        return record;
    }

    /// <summary>One approver's yes. Audited whether it counts or is refused.</summary>
    public async Task<ApprovalRecord> ApproveAsync(string id, Approver approver, RequestContext context, CancellationToken cancellationToken)
    {
        var record = await GetAsync(id, context, cancellationToken);
        var request = record.Request;
        try
        {
            CheckApprover(request, approver);
            var gates = Enumerable.Range(0, request.Gates.Count).Where(i => request.Gates[i].Approvers.Any(approver.Groups.Contains)).ToArray();
            if (gates.Length == 0)
            {
                throw BrokerErrors.PermissionDenied(
                    BrokerErrors.ApproverNotEligible,
                    "You hold none of the approver groups for this request: " + string.Join(", ", request.Gates.SelectMany(g => g.Approvers).Distinct()) + ".");
            }

            var change = await SharedState.CallAsync(_metrics, "approval.approve", () => _store.ApproveAsync(id, approver.Name, gates, _time.GetUtcNow(), cancellationToken));
            ThrowUnlessApplied(change, "approve");
            var votes = record.Votes.Count + 1;
            await AuditOrFailAsync(Event(AuditEventTypes.ApprovalApproved, request, context.CorrelationId, AuditOutcomes.Success) with
            {
                Actor = approver.Actor,
                Detail = Unconfirmed(change.Status == ApprovalStatus.Approved ? $"vote {votes}: quorum reached" : $"vote {votes}: waiting for more approvers", change.Confirmed),
                Peer = context.Peer,
            }, cancellationToken);
            Log.Approved(_logger, id, approver.Name, change.Status == ApprovalStatus.Approved);
            if (change.Status == ApprovalStatus.Approved)
            {
                Transitioned("approved", request, approver.Actor);
            }

            ThrowIfUnconfirmed(change.Confirmed, "vote");
            return await GetAsync(id, context, cancellationToken);
        }
        catch (BrokerException ex) when (ex.Reason != BrokerErrors.AuditUnavailable && ex.Reason != BrokerErrors.StateUnavailable)
        {
            await AuditQuietlyAsync(Event(AuditEventTypes.ApprovalApproved, request, context.CorrelationId, AuditOutcomes.Failure) with { Actor = approver.Actor, Reason = ex.Reason, Peer = context.Peer }, cancellationToken);
            throw;
        }
    }

    /// <summary>One approver's no: the request is closed and the agent's wait ends.</summary>
    public async Task<ApprovalRecord> DenyAsync(string id, Approver approver, string reason, RequestContext context, CancellationToken cancellationToken)
    {
        var why = RequestValidator.ValidateText(reason, "reason", MaxReasonLength);
        if (string.IsNullOrWhiteSpace(why))
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.ReasonRequired, "Say why the request is denied; the agent and the audit log see it.");
        }

        var record = await GetAsync(id, context, cancellationToken);
        var request = record.Request;
        if (!approver.Groups.Any(g => request.Gates.Any(gate => gate.Approvers.Contains(g))))
        {
            await AuditQuietlyAsync(Event(AuditEventTypes.ApprovalDenied, request, context.CorrelationId, AuditOutcomes.Failure) with { Actor = approver.Actor, Reason = BrokerErrors.ApproverNotEligible, Peer = context.Peer }, cancellationToken);
            throw BrokerErrors.PermissionDenied(BrokerErrors.ApproverNotEligible, "You hold none of the approver groups for this request.");
        }

        var change = await SharedState.CallAsync(_metrics, "approval.deny", () => _store.DenyAsync(id, approver.Name, why, _time.GetUtcNow(), cancellationToken));
        ThrowUnlessApplied(change, "deny");
        await AuditOrFailAsync(Event(AuditEventTypes.ApprovalDenied, request, context.CorrelationId, AuditOutcomes.Failure) with
        {
            Actor = approver.Actor,
            Reason = BrokerErrors.ApprovalDenied,
            Detail = Unconfirmed(AuditText.Bound(why, MaxReasonLength), change.Confirmed),
            Peer = context.Peer,
        }, cancellationToken);
        Log.Denied(_logger, id, approver.Name);
        Transitioned("denied", request, approver.Actor);
        ThrowIfUnconfirmed(change.Confirmed, "denial");
        return await GetAsync(id, context, cancellationToken);
    }

    /// <summary>Single use: consumes the approval for <paramref name="tokenId"/>, or throws when another caller already did (or it lapsed).</summary>
    internal async Task ConsumeAsync(ApprovalRecord record, string tokenId, WorkloadIdentity identity, RequestContext context, CancellationToken cancellationToken)
    {
        var change = await SharedState.CallAsync(_metrics, "approval.consume", () => _store.ConsumeAsync(record.Request.Id, tokenId, _time.GetUtcNow(), cancellationToken));
        ThrowUnlessApplied(change, "use");
        Transitioned("consumed", record.Request, identity.WorkloadId);
        await AuditOrFailAsync(Event(AuditEventTypes.ApprovalConsumed, record.Request, context.CorrelationId, AuditOutcomes.Success) with
        {
            Actor = identity.WorkloadId,
            TokenId = tokenId,
            Detail = Unconfirmed("approved by " + string.Join(", ", record.Votes.Select(v => "operator:" + v.Approver)), change.Confirmed),
            Peer = context.Peer,
        }, cancellationToken);

        // Used up but maybe not on a replica: no token is handed out on it.
        ThrowIfUnconfirmed(change.Confirmed, "use of the approval");
    }

    /// <summary>Counts the move and tells whoever watches approvals (never blocking).</summary>
    private void Transitioned(string transition, ApprovalRequest request, string? actor)
    {
        _metrics.ApprovalTransition(transition);
        _notifier.Notify(new ApprovalNotice(transition, request, actor, _time.GetUtcNow()));
    }

    /// <summary>Marks an audit detail whose change Redis replicas did not confirm.</summary>
    private static string? Unconfirmed(string? detail, bool confirmed) =>
        confirmed ? detail : string.IsNullOrEmpty(detail) ? "replication unconfirmed" : detail + " (replication unconfirmed)";

    /// <summary>
    /// The change is in force and audited, but the configured replicas did not confirm it: the
    /// caller hears UNAVAILABLE, never OK, because a failover could still lose it.
    /// </summary>
    private static void ThrowIfUnconfirmed(bool confirmed, string what)
    {
        if (!confirmed)
        {
            throw BrokerErrors.Unavailable(BrokerErrors.StateUnavailable, $"The {what} is recorded, but Redis replicas did not confirm it in time, so a failover could lose it. Check its state before retrying.");
        }
    }

    /// <summary>The worst current risk level of the agent and task, or <c>unknown</c>.</summary>
    private async Task<string> CurrentRiskAsync(string agent, string taskId, CancellationToken cancellationToken)
    {
        try
        {
            var view = await _risk.GetAsync(agent, taskId, _time.GetUtcNow(), cancellationToken);
            var levels = new[] { view.Agent.Current?.Level, view.Task.Current?.Level }.Where(l => l is not null).Select(l => l!.Value).ToArray();
            return levels.Length == 0 ? "unknown" : levels.Max().ToWire();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The risk gate has already decided this request may proceed; the digest records that risk was not readable.
            Log.RiskUnreadable(_logger, ex);
            return "unknown";
        }
    }

    private static void CheckApprover(ApprovalRequest request, Approver approver)
    {
        // Operator tokens are never agent credentials (at+jwt is refused at authentication);
        // a name that equals the agent's workload id is refused all the same.
        if (string.Equals(approver.Name, request.Agent, StringComparison.Ordinal))
        {
            throw BrokerErrors.PermissionDenied(BrokerErrors.ApproverIsRequester, "The agent that asked can never approve its own request.");
        }

        if (request.Owner is { } owner && string.Equals(approver.Name, owner, StringComparison.Ordinal))
        {
            throw BrokerErrors.PermissionDenied(BrokerErrors.ApproverIsOwner, "You own this agent in policy; its requests need another approver.");
        }
    }

    private static void ThrowUnlessApplied(ApprovalChange change, string action)
    {
        switch (change.Outcome)
        {
            case ApprovalChangeStatus.Applied:
                return;
            case ApprovalChangeStatus.NotFound:
                throw new BrokerException(FailureKind.NotFound, BrokerErrors.ApprovalNotFound, "No such approval request.");
            case ApprovalChangeStatus.Expired:
            case ApprovalChangeStatus.WrongState when change.Status == ApprovalStatus.Expired:
                throw BrokerErrors.FailedPrecondition(BrokerErrors.ApprovalExpired, $"The approval request has expired; nothing left to {action}. The agent must ask again.");
            case ApprovalChangeStatus.AlreadyVoted:
                throw BrokerErrors.FailedPrecondition(BrokerErrors.ApprovalAlreadyGiven, "You already approved this request; quorum needs other approvers.");
            case ApprovalChangeStatus.WrongState when change.Status == ApprovalStatus.Consumed:
                throw BrokerErrors.FailedPrecondition(BrokerErrors.ApprovalConsumed, "The approval was already used for a credential; it is single-use.");
            case ApprovalChangeStatus.WrongState when change.Status == ApprovalStatus.Denied:
                throw BrokerErrors.FailedPrecondition(BrokerErrors.ApprovalDenied, "The request was denied.");
            default:
                throw BrokerErrors.FailedPrecondition(BrokerErrors.ApprovalNotPending, $"The request is {change.Status?.ToWire() ?? "gone"}; nothing left to {action}.");
        }
    }

    private static void CheckId(string id)
    {
        if (!ApprovalRequest.IsWellFormedId(id))
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.ApprovalIdInvalid, "approval_id must be an id the broker returned (apr_ and 32 hex digits).");
        }
    }

    private AuditEvent Event((int Id, string Name) type, ApprovalRequest request, string correlationId, string outcome) => new()
    {
        EventId = type.Id,
        Type = type.Name,
        Time = _time.GetUtcNow(),
        CorrelationId = correlationId,
        PolicyDigest = request.PolicyDigest,
        Outcome = outcome,
        Subject = request.Agent,
        TaskId = request.TaskId,
        Phase = request.Phase.ToWire(),
        Scopes = request.Scopes,
        Audience = request.Audience,
        ApprovalId = request.Id,
        ApprovalDigest = request.Digest,
    };

    private Task AuditOrFailAsync(AuditEvent auditEvent, CancellationToken cancellationToken) =>
        _audit.AppendOrFailAsync(auditEvent, "The audit log cannot be written; approvals are paused.", cancellationToken);

    private async Task AuditQuietlyAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
    {
        if (await _audit.TryAppendAsync(auditEvent, cancellationToken) is { } ex)
        {
            Log.RefusalNotAudited(_logger, auditEvent.Type, auditEvent.Reason, ex);
        }
    }

    private static DateTimeOffset Truncate(DateTimeOffset now) => new(now.Ticks - (now.Ticks % TimeSpan.TicksPerSecond), TimeSpan.Zero);

    private static partial class Log
    {
        [LoggerMessage(EventId = 5000, Level = LogLevel.Information, Message = "Approval {ApprovalId} requested by {Subject} for task {TaskId}: {Scopes}")]
        public static partial void Requested(ILogger logger, string approvalId, string subject, string taskId, string scopes);

        [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "Approval {ApprovalId} approved by {Approver} (quorum reached: {QuorumReached})")]
        public static partial void Approved(ILogger logger, string approvalId, string approver, bool quorumReached);

        [LoggerMessage(EventId = 5002, Level = LogLevel.Information, Message = "Approval {ApprovalId} denied by {Approver}")]
        public static partial void Denied(ILogger logger, string approvalId, string approver);

        [LoggerMessage(EventId = 5010, Level = LogLevel.Warning, Message = "Runtime risk could not be read for an approval digest; recorded as unknown")]
        public static partial void RiskUnreadable(ILogger logger, Exception exception);

        [LoggerMessage(EventId = 5011, Level = LogLevel.Error, Message = "A {EventType} ({Reason}) could not be written to the audit log")]
        public static partial void RefusalNotAudited(ILogger logger, string eventType, string? reason, Exception exception);
    }
}
