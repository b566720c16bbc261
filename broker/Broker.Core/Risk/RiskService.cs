using System.Text.RegularExpressions;
using Broker.Core.Attestation;
using Broker.Core.Audit;
using Broker.Core.Diagnostics;
using Broker.Core.Errors;
using Broker.Core.Issuance;
using Broker.Core.Policy;
using Broker.Core.Refusals;
using Broker.Core.Revocation;
using Broker.Core.State;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Broker.Core.Risk;

/// <summary>A signal as the runtime-protection service sent it, before any check.</summary>
/// <param name="Level">Wire name (none, low, medium, high, critical); anything else is refused.</param>
public sealed record SignalReport(
    string? SignalId,
    string? Agent,
    string? TaskId,
    string? Level,
    double Score,
    string? Detector,
    string? EvidenceRef,
    DateTimeOffset? ObservedAt,
    DateTimeOffset? ValidUntil);

/// <summary>What became of an accepted signal.</summary>
/// <param name="Contained">The subject's live credentials were revoked and its issuance is frozen.</param>
/// <param name="RevocationIds">The revocations made (containment), empty otherwise.</param>
public sealed record SignalReceipt(string SignalId, SignalApplyStatus Status, bool Contained, IReadOnlyList<string> RevocationIds);

/// <summary>
/// Signal intake and the operator side of risk. A signal is accepted only from an attested
/// workload that policy names as a source and never about the source itself; it becomes the
/// subject's current risk (shared state), is written to telemetry (the only place evidence
/// goes), and at the containment level revokes and freezes. The audit log receives identity
/// consequences only, naming the signal by id.
/// </summary>
public sealed partial class RiskService
{
    /// <summary>The actor recorded on revocations and freezes the risk gate makes.</summary>
    public const string Actor = "broker:risk";

    public const int MaxSignalIdLength = 128;
    public const int MaxDetectorLength = 64;
    public const int MaxEvidenceRefLength = 1024;
    public const int MaxAgentLength = 2048;
    public const double MaxScore = 100;

    private readonly IWorkloadAttestor _attestor;
    private readonly BrokerMetrics _metrics;
    private readonly IPolicyProvider _policy;
    private readonly IRiskStore _store;
    private readonly ICredentialStore _credentials;
    private readonly ITelemetrySink _telemetry;
    private readonly IAuditSink _audit;
    private readonly RefusalAuditor _refusals;
    private readonly Revoker _revoker;
    private readonly RiskOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<RiskService> _logger;

    public RiskService(
        IWorkloadAttestor attestor,
        IPolicyProvider policy,
        IRiskStore store,
        ICredentialStore credentials,
        ITelemetrySink telemetry,
        IAuditSink audit,
        RefusalAuditor refusals,
        Revoker revoker,
        IOptions<RiskOptions> options,
        TimeProvider time,
        ILogger<RiskService> logger,
        BrokerMetrics metrics)
    {
        _metrics = metrics;
        _attestor = attestor;
        _policy = policy;
        _store = store;
        _credentials = credentials;
        _telemetry = telemetry;
        _audit = audit;
        _refusals = refusals;
        _revoker = revoker;
        _options = options.Value;
        _time = time;
        _logger = logger;
    }

    public async Task<SignalReceipt> ReportAsync(AttestationEvidence? evidence, SignalReport report, RequestContext context, CancellationToken cancellationToken)
    {
        var policy = _policy.Current;
        if (evidence is not null && _refusals.ShedIfSpent(RefusalDoors.Signal, context.Peer, static s => s.Attestor.HasValidated(s.Evidence), (Attestor: _attestor, Evidence: evidence)) is { } shed)
        {
            throw shed;
        }

        string? source = null;
        try
        {
            if (evidence is null)
            {
                throw BrokerErrors.Attestation(BrokerErrors.AttestationMissing, "An attestation proof is required.");
            }

            var identity = await _attestor.AttestAsync(evidence, cancellationToken);
            source = identity.WorkloadId;
            await SingleUseProofs.ClaimAsync(_credentials, _metrics, identity, cancellationToken);
            if (policy.Signals is not { } signals || !signals.IsSource(source))
            {
                throw BrokerErrors.PermissionDenied(BrokerErrors.SignalSourceNotAllowed, "This workload is not a signal source in policy (signals.sources).");
            }

            return await ApplyAsync(report, source, signals, context, cancellationToken);
        }
        catch (BrokerException ex) when (ex.Reason is not (BrokerErrors.TelemetryUnavailable or BrokerErrors.AuditUnavailable or BrokerErrors.StateUnavailable))
        {
            var from = source is null ? RefusalSource.FromPeer(RefusalDoors.Signal, context.Peer) : RefusalSource.FromWorkload(RefusalDoors.Signal, source, context.Peer);
            if (await AuditSignalRefusalAsync(source, ex.Reason, IsWellFormedId(report.SignalId) ? report.SignalId : null, context, from, cancellationToken) is { } limited)
            {
                throw limited;
            }

            throw;
        }
    }

    /// <summary>
    /// A signal carried by a Security Event Token from the Shared Signals transmitter that policy
    /// names (signals.ssf), whose signature and claims the caller has already verified. The same
    /// checks, state change, containment, telemetry and audit as <see cref="ReportAsync"/>.
    /// </summary>
    public async Task<SignalReceipt> ReportFromTransmitterAsync(string transmitter, SignalReport report, RequestContext context, CancellationToken cancellationToken)
    {
        try
        {
            if (_policy.Current.Signals is not { Ssf: { } ssf } signals || !string.Equals(ssf.Issuer, transmitter, StringComparison.Ordinal))
            {
                throw BrokerErrors.PermissionDenied(BrokerErrors.SignalSourceNotAllowed, "This transmitter is not the signal source in policy (signals.ssf).");
            }

            return await ApplyAsync(report, transmitter, signals, context, cancellationToken);
        }
        catch (BrokerException ex) when (ex.Reason is not (BrokerErrors.TelemetryUnavailable or BrokerErrors.AuditUnavailable or BrokerErrors.StateUnavailable))
        {
            if (await AuditSignalRefusalAsync(transmitter, ex.Reason, IsWellFormedId(report.SignalId) ? report.SignalId : null, context, RefusalSource.FromPeer(RefusalDoors.Ssf, context.Peer), cancellationToken) is { } limited)
            {
                throw limited;
            }

            throw;
        }
    }

    /// <summary>
    /// Records a refused signal (risk.signal_refused): the source, the reason and the signal id,
    /// never its content; within <paramref name="from"/>'s refusal budget, else counted and the
    /// <c>RATE_LIMITED</c> refusal to answer instead is returned.
    /// </summary>
    public ValueTask<BrokerException?> AuditSignalRefusalAsync(string? source, string? reason, string? signalId, RequestContext context, RefusalSource from, CancellationToken cancellationToken) =>
        _refusals.AuditAsync(Event(AuditEventTypes.RiskSignalRefused, context, source is null ? null : AuditText.Bound(source, MaxAgentLength), null) with
        {
            Outcome = AuditOutcomes.Failure,
            Reason = reason,
            Actor = source is null ? null : AuditText.Bound(source, MaxAgentLength),
            Detail = signalId is null ? null : $"signal {signalId}",
        }, from, cancellationToken);

    private async Task<SignalReceipt> ApplyAsync(SignalReport report, string source, SignalPolicy signals, RequestContext context, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var signal = Validate(report, source, signals, now);
        await RefuseSelfReportAsync(signal, cancellationToken);

        var result = await SharedState.CallAsync(_metrics, "risk.apply", () => _store.ApplyAsync(signal, signal.Digest(), signals.Containment, now, signal.ValidUntil + _options.IdRetention, cancellationToken));
        if (result.Status == SignalApplyStatus.IdReused)
        {
            throw BrokerErrors.FailedPrecondition(BrokerErrors.SignalIdReused, $"Signal id {signal.SignalId} was already reported with different content; use a new id.");
        }

        // State first, telemetry second: containment never waits on the telemetry store.
        // If telemetry fails the caller is told to retry; the retry is a duplicate and is
        // written to telemetry then.
        IReadOnlyList<string> revocations = [];
        var contain = result.Freeze == FreezeChange.Frozen || (result.Status == SignalApplyStatus.Duplicate && result.FrozenByThisSignal);
        if (contain)
        {
            revocations = await ContainAsync(signal, result.Freeze == FreezeChange.Frozen, context, cancellationToken);
        }
        else if (result.Freeze == FreezeChange.Lifted)
        {
            await AuditOrFailAsync(Event(AuditEventTypes.RiskUnfrozen, context, signal.Agent, signal.TaskId) with
            {
                Actor = Actor,
                Detail = $"freeze lifted by signal {signal.SignalId} (level {signal.Level.ToWire()}) from {source}",
            }, cancellationToken);
        }

        try
        {
            await _telemetry.AppendAsync(TelemetryRecord.From(signal, now, Outcome(result.Status)), cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.TelemetryFailed(_logger, signal.SignalId, ex);
            throw BrokerErrors.Unavailable(BrokerErrors.TelemetryUnavailable, "The signal is in force but could not be written to telemetry; send it again (a retry is idempotent).", ex);
        }

        Log.SignalAccepted(_logger, signal.SignalId, signal.Level.ToWire(), signal.Subject.ToString(), Outcome(result.Status));
        return new SignalReceipt(signal.SignalId, result.Status, contain, revocations);
    }

    /// <summary>Whether a signal id is 1-128 of A-Z a-z 0-9 . _ : -.</summary>
    public static bool IsValidSignalId(string? id) => IsWellFormedId(id);

    /// <summary>The current risk and freeze of an agent or a task.</summary>
    public async Task<RiskState> GetAsync(RiskSubject subject, CancellationToken cancellationToken)
    {
        ValidateSubject(subject);
        var view = await SharedState.CallAsync(_metrics, "risk.get", () => _store.GetAsync(
            subject.Kind == RiskSubjectKind.Agent ? subject.Id : null,
            subject.Kind == RiskSubjectKind.Task ? subject.Id : null,
            _time.GetUtcNow(),
            cancellationToken));
        return subject.Kind == RiskSubjectKind.Agent ? view.Agent : view.Task;
    }

    /// <summary>An operator vouches for the subject: its risk and freeze are forgotten and older signals ignored. Audited.</summary>
    public async Task<RiskState> ClearAsync(RiskSubject subject, string actor, string? reason, RequestContext context, CancellationToken cancellationToken)
    {
        ValidateSubject(subject);
        if (string.IsNullOrWhiteSpace(reason))
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.ReasonRequired, "A reason is required; it is recorded with the clear.");
        }

        var detail = RequestValidator.ValidateText(reason, "reason", IssuanceOptions.MaxJustificationLength);
        var now = _time.GetUtcNow();
        var maxValidity = _policy.Current.Signals?.MaxValidity ?? PolicyLoader.MaxSignalValidity;
        var before = await SharedState.CallAsync(_metrics, "risk.clear", () => _store.ClearAsync(subject, now, now + maxValidity + _options.ClockSkew, cancellationToken));
        var cleared = (before.Freeze?.SignalId ?? before.Current?.SignalId) is { } id ? $" (was signal {id})" : "";
        await AuditOrFailAsync(Event(AuditEventTypes.RiskCleared, context, subject.Kind == RiskSubjectKind.Agent ? subject.Id : null, subject.Kind == RiskSubjectKind.Task ? subject.Id : null) with
        {
            Actor = actor,
            Detail = AuditText.Bound(detail + cleared, IssuanceOptions.MaxJustificationLength),
        }, cancellationToken);
        return before;
    }

    private async Task<IReadOnlyList<string>> ContainAsync(RiskSignal signal, bool newlyFrozen, RequestContext context, CancellationToken cancellationToken)
    {
        if (newlyFrozen)
        {
            await AuditOrFailAsync(Event(AuditEventTypes.RiskFrozen, context, signal.Agent, signal.TaskId) with
            {
                Actor = Actor,
                Detail = $"issuance frozen by signal {signal.SignalId} (level {signal.Level.ToWire()}) from {signal.Source}",
            }, cancellationToken);
        }

        var selector = signal.TaskId is null
            ? Broker.Revocation.RevocationSelector.ForAgent(signal.Agent)
            : Broker.Revocation.RevocationSelector.ForTask(signal.TaskId);
        var entries = await _revoker.RevokeAsync([selector], Actor, $"risk {signal.Level.ToWire()} (signal {signal.SignalId})", context, cancellationToken);
        Log.Contained(_logger, signal.SignalId, signal.Subject.ToString());
        return entries.Select(e => e.Id).ToList();
    }

    private RiskSignal Validate(SignalReport report, string source, SignalPolicy signals, DateTimeOffset now)
    {
        static BrokerException Invalid(string field, string message) =>
            new(FailureKind.InvalidArgument, BrokerErrors.SignalInvalid, message, new Dictionary<string, string> { ["field"] = field });

        if (!IsWellFormedId(report.SignalId))
        {
            throw Invalid("signal_id", $"signal_id must be 1 to {MaxSignalIdLength} of A-Z a-z 0-9 . _ : -");
        }

        if (string.IsNullOrWhiteSpace(report.Agent) || report.Agent.Length > MaxAgentLength || report.Agent.Any(c => char.IsControl(c) || char.IsWhiteSpace(c)))
        {
            throw Invalid("agent", "agent must be the agent's workload id.");
        }

        var taskId = string.IsNullOrEmpty(report.TaskId) ? null : report.TaskId;
        if (taskId is not null)
        {
            try
            {
                RequestValidator.ValidateTaskId(taskId);
            }
            catch (BrokerException)
            {
                throw Invalid("task_id", "task_id is not a valid task id.");
            }
        }

        if (!RiskLevels.TryParse(report.Level, out var level))
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.SignalLevelUnknown, "level must be none, low, medium, high or critical.");
        }

        if (double.IsNaN(report.Score) || report.Score < 0 || report.Score > MaxScore)
        {
            throw Invalid("score", $"score must be between 0 and {MaxScore}.");
        }

        if (string.IsNullOrEmpty(report.Detector) || !DetectorRegex().IsMatch(report.Detector))
        {
            throw Invalid("detector", $"detector must be 1 to {MaxDetectorLength} of a-z 0-9 . _ - (e.g. prompt_injection).");
        }

        var evidence = string.IsNullOrEmpty(report.EvidenceRef) ? null : report.EvidenceRef;
        if (evidence is not null && (evidence.Length > MaxEvidenceRefLength || evidence.Any(char.IsControl)))
        {
            throw Invalid("evidence_ref", $"evidence_ref must be at most {MaxEvidenceRefLength} characters without control characters.");
        }

        if (report.ObservedAt is not { } observed || observed == default)
        {
            throw Invalid("observed_at", "observed_at is required.");
        }

        if (report.ValidUntil is not { } until || until == default)
        {
            throw Invalid("valid_until", "valid_until is required.");
        }

        if (observed > now + _options.ClockSkew)
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.SignalFromFuture, $"observed_at is more than {(int)_options.ClockSkew.TotalSeconds}s in the future.");
        }

        if (until <= observed)
        {
            throw Invalid("valid_until", "valid_until must be after observed_at.");
        }

        if (until - observed > signals.MaxValidity)
        {
            throw Invalid("valid_until", $"a signal may stay current for at most {(int)signals.MaxValidity.TotalSeconds}s (signals.max_validity).");
        }

        if (until <= now)
        {
            throw BrokerErrors.FailedPrecondition(BrokerErrors.SignalExpired, "valid_until has passed; the signal would change nothing.");
        }

        return new RiskSignal(report.SignalId!, report.Agent, taskId, level, report.Score, report.Detector, evidence, observed, until, source);
    }

    /// <summary>An agent never reports on itself, nor on a task it owns: it could lower its own risk.</summary>
    private async Task RefuseSelfReportAsync(RiskSignal signal, CancellationToken cancellationToken)
    {
        var self = string.Equals(signal.Agent, signal.Source, StringComparison.Ordinal);
        if (!self && signal.TaskId is not null)
        {
            var task = await SharedState.CallAsync(_metrics, "credential.get_task", () => _credentials.GetTaskAsync(signal.TaskId, cancellationToken));
            self = task is not null && string.Equals(task.Owner, signal.Source, StringComparison.Ordinal);
        }

        if (self)
        {
            throw BrokerErrors.PermissionDenied(BrokerErrors.SignalSelfReport, "A workload cannot report risk about itself or its own tasks.");
        }
    }

    private static void ValidateSubject(RiskSubject subject)
    {
        if (subject.Kind == RiskSubjectKind.Task)
        {
            RequestValidator.ValidateTaskId(subject.Id);
        }
        else if (string.IsNullOrWhiteSpace(subject.Id) || subject.Id.Length > MaxAgentLength || subject.Id.Any(char.IsControl))
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.SelectorInvalid, "agent must be a workload id.");
        }
    }

    private static bool IsWellFormedId(string? id) => !string.IsNullOrEmpty(id) && id.Length <= MaxSignalIdLength && SignalIdRegex().IsMatch(id);

    private static string Outcome(SignalApplyStatus status) => status switch
    {
        SignalApplyStatus.Applied => "applied",
        SignalApplyStatus.Superseded => "superseded",
        SignalApplyStatus.Duplicate => "duplicate",
        _ => "refused",
    };

    private AuditEvent Event((int Id, string Name) type, RequestContext context, string? subject, string? taskId) => new()
    {
        EventId = type.Id,
        Type = type.Name,
        Time = _time.GetUtcNow(),
        CorrelationId = context.CorrelationId,
        PolicyDigest = _policy.Current.Digest,
        Outcome = AuditOutcomes.Success,
        Subject = subject is null ? null : AuditText.Bound(subject, MaxAgentLength),
        TaskId = taskId,
        Peer = context.Peer,
    };

    private Task AuditOrFailAsync(AuditEvent auditEvent, CancellationToken cancellationToken) =>
        _audit.AppendOrFailAsync(auditEvent, "The risk change is in force, but its audit record could not be written.", cancellationToken);


    [GeneratedRegex("^[A-Za-z0-9._:-]+$", RegexOptions.CultureInvariant)]
    private static partial Regex SignalIdRegex();

    [GeneratedRegex("^[a-z0-9._-]{1,64}$", RegexOptions.CultureInvariant)]
    private static partial Regex DetectorRegex();

    // Signal ids and subjects only: evidence references never reach a log line.
    private static partial class Log
    {
        [LoggerMessage(EventId = 6000, Level = LogLevel.Information, Message = "Signal {SignalId} ({Level}) about {Subject}: {Outcome}")]
        public static partial void SignalAccepted(ILogger logger, string signalId, string level, string subject, string outcome);

        [LoggerMessage(EventId = 6001, Level = LogLevel.Warning, Message = "Signal {SignalId} contained {Subject}: live credentials revoked, issuance frozen")]
        public static partial void Contained(ILogger logger, string signalId, string subject);

        [LoggerMessage(EventId = 6002, Level = LogLevel.Error, Message = "Signal {SignalId} could not be written to telemetry")]
        public static partial void TelemetryFailed(ILogger logger, string signalId, Exception exception);
    }
}
