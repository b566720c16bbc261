using Broker.Core.Audit;
using Broker.Core.Errors;
using Broker.Core.Policy;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Broker.Core.Secrets;

/// <summary>
/// Opens and ends leases. A lease is recorded before its credential exists and removed only after
/// the credential is gone; ending takes a claim in shared state first, so across all nodes each
/// lease is ended (and audited as ended) once.
/// </summary>
public sealed partial class SecretLeases
{
    private readonly ILeaseStore _store;
    private readonly SecretEngines _engines;
    private readonly IPolicyProvider _policy;
    private readonly IAuditSink _audit;
    private readonly SecretMetrics _metrics;
    private readonly SecretOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<SecretLeases> _logger;

    public SecretLeases(ILeaseStore store, SecretEngines engines, IPolicyProvider policy, IAuditSink audit, SecretMetrics metrics, IOptions<SecretOptions> options, TimeProvider time, ILogger<SecretLeases> logger)
    {
        _store = store;
        _engines = engines;
        _policy = policy;
        _audit = audit;
        _metrics = metrics;
        _options = options.Value;
        _time = time;
        _logger = logger;
    }

    public string Node => _options.Node;

    public ILeaseStore Store => _store;

    public SecretEngines Engines => _engines;

    /// <summary>
    /// Records the lease, then creates its credential. If the engine fails, or the lease was ended
    /// while the credential was being made, nothing is handed out and no login is left behind.
    /// </summary>
    internal async Task<DownstreamLogin> OpenAsync(SecretLease lease, ISecretEngine engine, CancellationToken cancellationToken)
    {
        await StateAsync(() => _store.RecordAsync(lease, cancellationToken));
        DownstreamLogin login;
        try
        {
            login = await engine.CreateAsync(lease, cancellationToken);
        }
        catch (SecretEngineException ex)
        {
            _metrics.Failed(lease.Engine, "create");
            Log.CreateFailed(_logger, lease.LeaseId, lease.Engine, ex.Message);
            if (ex.NothingDone)
            {
                await ForgetQuietlyAsync(lease);
            }
            else
            {
                await EndQuietlyAsync(lease, LeaseEnd.Voided(SecretErrors.SecretEngineUnavailable));
            }

            throw ex.RoleMissing
                ? BrokerErrors.FailedPrecondition(SecretErrors.SecretRoleMissing, $"Policy grants role '{lease.Role}' on engine '{lease.Engine}', but that role does not exist there; an administrator must create it or fix the policy.")
                : SecretErrors.EngineUnavailable(lease.Engine, ex.Message, ex);
        }
        catch
        {
            await EndQuietlyAsync(lease, LeaseEnd.Voided("issuance did not complete"));
            throw;
        }

        // A node that claimed the lease meanwhile (a revocation) may have ended it before the
        // login existed: then this node drops the login itself and hands nothing out.
        if (!await StateAsync(() => _store.IsUnclaimedAsync(lease.LeaseId, cancellationToken)))
        {
            await RevokeQuietlyAsync(engine, lease);
            throw BrokerErrors.FailedPrecondition(BrokerErrors.TaskEnded, "The lease was revoked while it was being issued.");
        }

        _metrics.Issued(lease.Engine);
        return login;
    }

    /// <summary>
    /// Ends the lease if no other node is ending it: terminates its sessions, drops its login,
    /// audits <c>secret.ended</c> and removes the record. False when another node holds it, it is
    /// already gone, or the engine failed (the next sweep retries).
    /// </summary>
    public async Task<bool> EndAsync(SecretLease lease, LeaseEnd end, DateTimeOffset dueAt, CancellationToken cancellationToken)
    {
        if (!await _store.TryClaimAsync(lease.LeaseId, _options.Node, _options.ClaimHold, cancellationToken))
        {
            return false;
        }

        var engine = _engines.ForLease(_policy.Current, lease.Engine);
        try
        {
            if (engine is null)
            {
                throw new SecretEngineException(lease.Engine, "the engine is no longer declared in policy and this node never ran it");
            }

            await engine.RevokeAsync(lease, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            _metrics.Failed(lease.Engine, "revoke");
            Log.RevokeFailed(_logger, lease.LeaseId, lease.Engine, ex.Message);
            await AuditAsync(Event(AuditEventTypes.SecretCleanupFailed, lease, end, AuditOutcomes.Failure) with { Detail = AuditText.Bound(ex.Message, 512) }, cancellationToken);
            await _store.ReleaseAsync(lease.LeaseId, _options.Node, CancellationToken.None);
            return false;
        }

        await AuditAsync(Event(AuditEventTypes.SecretEnded, lease, end, AuditOutcomes.Success), cancellationToken);
        await _store.CompleteAsync(lease.LeaseId, _options.Node, CancellationToken.None);
        _metrics.Ended(lease.Engine, end.Reason, _time.GetUtcNow() - dueAt);
        Log.Ended(_logger, lease.LeaseId, lease.Engine, end.Reason);
        return true;
    }

    internal async Task EndQuietlyAsync(SecretLease lease, LeaseEnd end)
    {
        try
        {
            await EndAsync(lease, end, _time.GetUtcNow(), CancellationToken.None);
        }
        catch (Exception ex)
        {
            // The record stays; the sweep ends the lease later.
            Log.RevokeFailed(_logger, lease.LeaseId, lease.Engine, ex.Message);
        }
    }

    // The engine made nothing: the record goes without an engine call or a secret.ended record.
    private async Task ForgetQuietlyAsync(SecretLease lease)
    {
        try
        {
            if (await _store.TryClaimAsync(lease.LeaseId, _options.Node, _options.ClaimHold, CancellationToken.None))
            {
                await _store.CompleteAsync(lease.LeaseId, _options.Node, CancellationToken.None);
            }
        }
        catch (Exception ex)
        {
            // The record stays; the sweep ends it later (dropping a login that does not exist is a no-op).
            Log.RevokeFailed(_logger, lease.LeaseId, lease.Engine, ex.Message);
        }
    }

    private async Task RevokeQuietlyAsync(ISecretEngine engine, SecretLease lease)
    {
        try
        {
            await engine.RevokeAsync(lease, CancellationToken.None);
        }
        catch (Exception ex)
        {
            _metrics.Failed(lease.Engine, "revoke");
            Log.RevokeFailed(_logger, lease.LeaseId, lease.Engine, ex.Message);
        }
    }

    private AuditEvent Event((int Id, string Name) type, SecretLease lease, LeaseEnd end, string outcome) => new()
    {
        EventId = type.Id,
        Type = type.Name,
        Time = _time.GetUtcNow(),
        CorrelationId = end.Revocation?.Id ?? "lease-" + lease.LeaseId,
        Outcome = outcome,
        Reason = end.Reason,
        Subject = lease.Subject,
        TaskId = lease.TaskId,
        Phase = lease.Phase.ToWire(),
        ExpiresAt = lease.ExpiresAt,
        LeaseId = lease.LeaseId,
        Engine = lease.Engine,
        Role = lease.Role,
        Actor = end.Revocation?.Actor ?? "broker:" + _options.Node,
        Selector = end.Revocation?.Selector.ToString(),
        RevocationId = end.Revocation?.Id,
        Detail = end.Detail ?? AuditText.Bound(end.Revocation?.Reason, 512),
    };

    private async Task AuditAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
    {
        if (await _audit.TryAppendAsync(auditEvent, cancellationToken) is { } ex)
        {
            Log.NotAudited(_logger, auditEvent.Type, auditEvent.LeaseId, ex);
        }
    }

    private static async Task<T> StateAsync<T>(Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (Exception ex) when (ex is not BrokerException and not OperationCanceledException)
        {
            throw BrokerErrors.Unavailable(SecretErrors.LeaseStateUnavailable, "Lease state cannot be reached; nothing was issued.", ex);
        }
    }

    private static Task StateAsync(Func<Task> call) => StateAsync(async () =>
    {
        await call();
        return true;
    });

    private static partial class Log
    {
        [LoggerMessage(EventId = 2500, Level = LogLevel.Information, Message = "Lease {LeaseId} on {Engine} ended ({Reason})")]
        public static partial void Ended(ILogger logger, string leaseId, string engine, string reason);

        [LoggerMessage(EventId = 2501, Level = LogLevel.Warning, Message = "Creating the login of lease {LeaseId} on {Engine} failed: {Why}")]
        public static partial void CreateFailed(ILogger logger, string leaseId, string engine, string why);

        [LoggerMessage(EventId = 2502, Level = LogLevel.Error, Message = "Ending lease {LeaseId} on {Engine} failed, retried by the next sweep: {Why}")]
        public static partial void RevokeFailed(ILogger logger, string leaseId, string engine, string why);

        [LoggerMessage(EventId = 2503, Level = LogLevel.Error, Message = "A {EventType} for lease {LeaseId} could not be written to the audit log")]
        public static partial void NotAudited(ILogger logger, string eventType, string? leaseId, Exception exception);
    }
}
