using Broker.Core.Errors;

namespace Broker.Core.Audit;

/// <summary>The two ways callers append: must be recorded, or best effort beside another outcome.</summary>
public static class AuditSinkExtensions
{
    /// <summary>
    /// Appends, or throws <c>UNAVAILABLE / AUDIT_UNAVAILABLE</c> with <paramref name="whenFailed"/>:
    /// the caller must not report success for something that is not recorded.
    /// </summary>
    public static async Task AppendOrFailAsync(this IAuditSink audit, AuditEvent auditEvent, string whenFailed, CancellationToken cancellationToken)
    {
        try
        {
            await audit.AppendAsync(auditEvent, cancellationToken);
        }
        catch (Exception ex) when (ex is not BrokerException and not OperationCanceledException)
        {
            throw BrokerErrors.Unavailable(BrokerErrors.AuditUnavailable, whenFailed, ex);
        }
    }

    /// <summary>
    /// Appends and returns the failure instead of throwing: for refusals (already the fail-closed
    /// answer; the caller logs that the record is missing) and for appends that run beside other work.
    /// </summary>
    public static async Task<Exception?> TryAppendAsync(this IAuditSink audit, AuditEvent auditEvent, CancellationToken cancellationToken)
    {
        try
        {
            await audit.AppendAsync(auditEvent, cancellationToken);
            return null;
        }
        catch (Exception ex)
        {
            return ex;
        }
    }
}
