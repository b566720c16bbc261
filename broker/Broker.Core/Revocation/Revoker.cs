using Broker.Core.Audit;
using Broker.Core.Diagnostics;
using Broker.Core.Errors;
using Broker.Core.Issuance;
using Broker.Core.Policy;
using Broker.Core.State;
using Broker.Revocation;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Broker.Core.Revocation;

/// <summary>
/// Revokes: validates selectors, appends them durably to the shared log, applies them to this
/// node at once, ends revoked tasks, and audits who did it and why. Also used by the broker
/// itself (task ended, phase moved on) with actor <see cref="BrokerActor"/>.
/// </summary>
public sealed partial class Revoker
{
    public const string BrokerActor = "broker";

    private readonly IRevocationStore _store;
    private readonly BrokerMetrics _metrics;
    private readonly ILogger<Revoker> _logger;
    private readonly RevocationFeed _feed;
    private readonly ICredentialStore _credentials;
    private readonly IAuditSink _audit;
    private readonly IPolicyProvider _policy;
    private readonly RevocationOptions _options;
    private readonly TimeProvider _time;

    public Revoker(
        IRevocationStore store,
        RevocationFeed feed,
        ICredentialStore credentials,
        IAuditSink audit,
        IPolicyProvider policy,
        IOptions<RevocationOptions> options,
        TimeProvider time,
        BrokerMetrics metrics,
        ILogger<Revoker> logger)
    {
        _metrics = metrics;
        _logger = logger;
        _store = store;
        _feed = feed;
        _credentials = credentials;
        _audit = audit;
        _policy = policy;
        _options = options.Value;
        _time = time;
    }

    public async Task<IReadOnlyList<RevocationEntry>> RevokeAsync(IReadOnlyList<RevocationSelector> selectors, string actor, string? reason, RequestContext context, CancellationToken cancellationToken)
    {
        if (selectors.Count == 0)
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.SelectorInvalid, "At least one selector is required.");
        }

        if (selectors.Count > _options.MaxBatch)
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.BatchTooLarge, $"At most {_options.MaxBatch} selectors per call.");
        }

        if (string.IsNullOrWhiteSpace(reason))
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.ReasonRequired, "A reason is required; it is recorded with the revocation.");
        }

        if (reason.Length > IssuanceOptions.MaxJustificationLength)
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.TextTooLong, $"reason is longer than {IssuanceOptions.MaxJustificationLength} characters.");
        }

        var now = _time.GetUtcNow();
        var drafts = selectors.Select(s => Draft(Validate(s, now), actor, reason, now)).ToList();
        var (entries, confirmed) = await AppendAsync(drafts, cancellationToken);

        // A revoked task is also ended, so the agent cannot simply ask again.
        foreach (var entry in entries.Where(e => e.Selector.Kind == RevocationKind.Task))
        {
            try
            {
                await _credentials.EndTaskAsync(entry.Selector.Value, owner: null, now, TimeSpan.FromDays(7), cancellationToken);
            }
            catch (Exception ex) when (ex is not BrokerException and not OperationCanceledException)
            {
                // The revocation, already in force, ends the task at issuance by itself; the task
                // record only says so to readers. The revocation is still audited below.
                Log.TaskRecordNotWritten(_logger, entry.Selector.Value, ex);
            }
        }

        foreach (var entry in entries)
        {
            await AuditAsync(entry, context, confirmed, cancellationToken);
        }

        ThrowIfUnconfirmed(confirmed);

        return entries;
    }

    /// <summary>Revocations the broker makes on its own (task ended, phase moved on); already-validated selectors.</summary>
    internal async Task<IReadOnlyList<RevocationEntry>> RevokeInternalAsync(RevocationSelector selector, string reason, RequestContext context, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var (entries, confirmed) = await AppendAsync([Draft(selector, BrokerActor, reason, now)], cancellationToken);
        foreach (var entry in entries)
        {
            await AuditAsync(entry, context, confirmed, cancellationToken);
        }

        ThrowIfUnconfirmed(confirmed);
        return entries;
    }

    /// <summary>
    /// Tells every node that the task left <paramref name="left"/> when leaving it revokes nothing
    /// (<c>keep_tokens_on_exit</c>), so none keeps deciding that phase from memory. Nothing to audit:
    /// no credential changes.
    /// </summary>
    internal Task<PhaseMove> AnnounceMoveAsync(string taskId, TaskPhase left, CancellationToken cancellationToken) =>
        CallStoreAsync(
            "revocation.announce",
            async () =>
            {
                var move = new PhaseMove(taskId, left.ToWire(), _time.GetUtcNow());
                await _store.AnnounceAsync(move, cancellationToken);
                return move;
            },
            "The phase move could not be announced to the other nodes (or replicas did not confirm it); the task did not move. Retry.");

    public async Task<(string Epoch, RevocationEntry Cutoff)> RestoreEpochAsync(string actor, string? reason, RequestContext context, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(reason))
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.ReasonRequired, "A reason is required.");
        }

        // iat has whole seconds: cut at the end of this second, so a token minted in this second
        // before the loss is caught too. Tokens minted later in this same second are caught as
        // well; agents simply ask again.
        var now = _time.GetUtcNow();
        var second = DateTimeOffset.FromUnixTimeSeconds(now.ToUnixTimeSeconds() + 1);
        var cutoff = Draft(RevocationSelector.IssuedBeforeTime(second), actor, "revocation state restored: " + AuditText.Bound(reason, IssuanceOptions.MaxJustificationLength), now);

        // Tasks ended or revoked before the loss stay refused: their revocations, as this node
        // knew them, go into the new epoch with the cut-off (an empty Redis lost the tasks' ended
        // marks too). Only unexpired ones: an expired entry can match no live token, and the task
        // record it stood beside was lost either way.
        var carried = _feed.TaskRevocationsKnown()
            .Where(e => e.ExpiresAt > now)
            .Select(e => new RevocationDraft(e.Selector, e.Actor, e.Reason, e.RevokedAt, e.ExpiresAt))
            .ToList();
        (string Epoch, RevocationEntry Cutoff) restored;
        try
        {
            restored = await _store.RestoreEpochAsync(cutoff, carried, cancellationToken);
        }
        catch (RevocationUnconfirmedException ex)
        {
            // The new epoch and its cut-off are in force on the primary: say so, and audit it.
            _feed.ApplyLocal(ex.Entries);
            await AuditAsync(ex.Entries[0], context, confirmed: false, cancellationToken);
            throw BrokerErrors.Unavailable(BrokerErrors.StateUnavailable, "The epoch was restored, but Redis replicas did not confirm it in time, so a failover could lose it. Run the restore again; a second restore only moves the cut-off later.");
        }
        catch (Exception ex) when (ex is not BrokerException and not OperationCanceledException)
        {
            throw BrokerErrors.Unavailable(BrokerErrors.StateUnavailable, "The revocation epoch could not be restored; nothing changed. Retry.", ex);
        }

        _feed.ApplyLocal([restored.Cutoff]);
        await AuditAsync(restored.Cutoff, context, confirmed: true, cancellationToken);
        Log.EndedTasksCarried(_logger, carried.Count);
        return restored;
    }

    /// <summary>Break glass: refuse all issuance fleet-wide (or lift that with <paramref name="freeze"/> false).</summary>
    public async Task<IssuanceFreeze?> SetFreezeAsync(bool freeze, string actor, string? reason, RequestContext context, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(reason))
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.ReasonRequired, "A reason is required.");
        }

        if (reason.Length > IssuanceOptions.MaxJustificationLength)
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.TextTooLong, $"reason is longer than {IssuanceOptions.MaxJustificationLength} characters.");
        }

        var now = _time.GetUtcNow();
        var state = freeze ? new IssuanceFreeze(actor, reason, now) : null;
        try
        {
            await _store.SetFreezeAsync(state, cancellationToken);
        }
        catch (Exception ex) when (ex is not BrokerException and not OperationCanceledException)
        {
            throw BrokerErrors.Unavailable(BrokerErrors.StateUnavailable, "The freeze change could not be confirmed durable (it may or may not be in force); retry until it answers OK.", ex);
        }

        await _feed.SyncAsync(cancellationToken);
        var type = freeze ? AuditEventTypes.IssuanceFrozen : AuditEventTypes.IssuanceUnfrozen;
        await _audit.AppendAsync(
            new AuditEvent
            {
                EventId = type.Id,
                Type = type.Name,
                Time = now,
                CorrelationId = context.CorrelationId,
                PolicyDigest = _policy.Current.Digest,
                Outcome = AuditOutcomes.Success,
                Actor = actor,
                Detail = AuditText.Bound(reason, IssuanceOptions.MaxJustificationLength),
                Peer = context.Peer,
            },
            cancellationToken);
        return state;
    }

    /// <summary>Appends and applies locally; <c>Confirmed</c> is false when the entries are in force but replicas did not confirm them.</summary>
    private async Task<(IReadOnlyList<RevocationEntry> Entries, bool Confirmed)> AppendAsync(IReadOnlyList<RevocationDraft> drafts, CancellationToken cancellationToken)
    {
        IReadOnlyList<RevocationEntry> entries;
        var confirmed = true;
        using var activity = BrokerActivity.Source.StartActivity("broker.state revocation.append", System.Diagnostics.ActivityKind.Client);
        try
        {
            entries = await CallStoreAsync("revocation.append", () => _store.AppendAsync(drafts, cancellationToken), "The revocation could not be made durable; it is NOT in force. Retry.");
        }
        catch (RevocationUnconfirmedException ex)
        {
            entries = ex.Entries;
            confirmed = false;
        }

        _feed.ApplyLocal(entries);
        return (entries, confirmed);
    }

    /// <summary>
    /// One write to the revocation log, timed as <paramref name="operation"/>. A lost epoch or a
    /// failed write becomes UNAVAILABLE; writes in force but not on the replicas pass through as
    /// <see cref="RevocationUnconfirmedException"/>.
    /// </summary>
    private async Task<T> CallStoreAsync<T>(string operation, Func<Task<T>> write, string notWritten)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            var result = await write();
            _metrics.StateCall(operation, succeeded: true, System.Diagnostics.Stopwatch.GetElapsedTime(started));
            return result;
        }
        catch (Exception ex) when (ex is not BrokerException and not OperationCanceledException)
        {
            _metrics.StateCall(operation, succeeded: false, System.Diagnostics.Stopwatch.GetElapsedTime(started));
            if (ex is RevocationUnconfirmedException)
            {
                throw;
            }

            throw ex is RevocationStateLostException
                ? BrokerErrors.Unavailable(BrokerErrors.RevocationStateLost, "Revocation state was lost; restore the revocation epoch first (brokerctl revocations restore-epoch).")
                : BrokerErrors.Unavailable(BrokerErrors.StateUnavailable, notWritten, ex);
        }
    }

    /// <summary>In force and audited, but not on the replicas: the caller hears UNAVAILABLE, never OK.</summary>
    private static void ThrowIfUnconfirmed(bool confirmed)
    {
        if (!confirmed)
        {
            throw BrokerErrors.Unavailable(BrokerErrors.StateUnavailable, "The revocation is in force, but Redis replicas did not confirm it in time, so a failover could lose it. Retry; revoking again is harmless.");
        }
    }

    private RevocationSelector Validate(RevocationSelector selector, DateTimeOffset now)
    {
        static BrokerException Invalid(string message) => BrokerErrors.InvalidArgument(BrokerErrors.SelectorInvalid, message);

        switch (selector.Kind)
        {
            case RevocationKind.Token:
                if (!RevocationIndex.TryParseTokenId(selector.Value, out _))
                {
                    throw Invalid("token_id is not a Broker token id.");
                }

                break;
            case RevocationKind.Task:
            case RevocationKind.TaskPhase:
                RequestValidator.ValidateTaskId(selector.Value);
                if (selector.Kind == RevocationKind.TaskPhase && !TaskPhaseNames.TryParse(selector.Phase, out _))
                {
                    throw Invalid("phase must be planning, execution or recovery.");
                }

                break;
            case RevocationKind.Agent:
            case RevocationKind.AgentIssuedBefore:
                if (string.IsNullOrWhiteSpace(selector.Value) || selector.Value.Length > 2048 || selector.Value.Any(char.IsControl))
                {
                    throw Invalid("agent must be a workload id.");
                }

                break;
            case RevocationKind.TrustDomain:
                if (!Attestation.SpiffeId.IsValidTrustDomain(selector.Value))
                {
                    throw Invalid("trust_domain is not a valid SPIFFE trust domain.");
                }

                break;
        }

        if (selector.Kind is RevocationKind.IssuedBefore or RevocationKind.AgentIssuedBefore)
        {
            if (selector.Before is not { } before || before == default)
            {
                throw Invalid("issued_before.time is required.");
            }

            if (before > now + _options.ClockSkew)
            {
                throw Invalid("issued_before.time is in the future; revoke by agent or freeze issuance instead.");
            }
        }

        return selector;
    }

    private RevocationDraft Draft(RevocationSelector selector, string actor, string reason, DateTimeOffset now)
    {
        // An entry lives exactly as long as the longest token it can match.
        var coversUntil = selector.Kind is RevocationKind.IssuedBefore or RevocationKind.AgentIssuedBefore
            ? selector.Before!.Value
            : now;
        return new RevocationDraft(selector, actor, reason, now, coversUntil + _options.MaxTokenLifetime + _options.ClockSkew);
    }

    private async Task AuditAsync(RevocationEntry entry, RequestContext context, bool confirmed, CancellationToken cancellationToken)
    {
        try
        {
            await _audit.AppendAsync(
                new AuditEvent
                {
                    EventId = AuditEventTypes.Revoked.Id,
                    Type = AuditEventTypes.Revoked.Name,
                    Time = entry.RevokedAt,
                    CorrelationId = context.CorrelationId,
                    PolicyDigest = _policy.Current.Digest,
                    Outcome = AuditOutcomes.Success,
                    Actor = entry.Actor,
                    Detail = AuditText.Bound(entry.Reason, IssuanceOptions.MaxJustificationLength) + (confirmed ? "" : " (replication unconfirmed)"),
                    Selector = entry.Selector.ToString(),
                    RevocationId = entry.Id,
                    TokenId = entry.Selector.Kind == RevocationKind.Token ? entry.Selector.Value : null,
                    TaskId = entry.Selector.Kind is RevocationKind.Task or RevocationKind.TaskPhase ? entry.Selector.Value : null,
                    Subject = entry.Selector.Kind is RevocationKind.Agent or RevocationKind.AgentIssuedBefore ? entry.Selector.Value : null,
                    Peer = context.Peer,
                },
                cancellationToken);
        }
        catch (Exception ex) when (ex is not BrokerException)
        {
            // The revocation is already in force everywhere; say that the record is what failed.
            throw BrokerErrors.Unavailable(BrokerErrors.AuditUnavailable, "The revocation is in force, but its audit record could not be written.", ex);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3110, Level = LogLevel.Warning, Message = "Task {TaskId} is revoked, but its ended record could not be written; the revocation still ends it")]
        public static partial void TaskRecordNotWritten(ILogger logger, string taskId, Exception exception);

        [LoggerMessage(EventId = 4300, Level = LogLevel.Warning, Message = "Revocation epoch restored; {Count} revocations of ended or revoked tasks known from before the loss were carried into it")]
        public static partial void EndedTasksCarried(ILogger logger, int count);
    }
}
