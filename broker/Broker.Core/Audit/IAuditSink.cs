namespace Broker.Core.Audit;

/// <summary>
/// Where identity events go. <see cref="AppendAsync"/> completes only once the event is
/// durable; a failure surfaces as <c>UNAVAILABLE / AUDIT_UNAVAILABLE</c> and the caller must
/// not report success.
/// </summary>
public interface IAuditSink
{
    ValueTask AppendAsync(AuditEvent auditEvent, CancellationToken cancellationToken);
}
