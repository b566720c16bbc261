using System.Collections.Concurrent;
using Broker.Core.Audit;

namespace Broker.Core.Tests.Policy;

/// <summary>Keeps every appended event in memory; can be switched to fail like an unavailable store.</summary>
public sealed class RecordingAuditSink : IAuditSink
{
    private readonly ConcurrentQueue<AuditEvent> _events = new();

    public IReadOnlyList<AuditEvent> Events => [.. _events];

    /// <summary>While true, appends throw and record nothing.</summary>
    public bool Fail { get; set; }

    public ValueTask AppendAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
    {
        if (Fail)
        {
            throw new IOException("audit store unavailable (test)");
        }

        _events.Enqueue(auditEvent);
        return ValueTask.CompletedTask;
    }

    public IReadOnlyList<AuditEvent> OfType((int Id, string Name) type) => [.. _events.Where(e => e.EventId == type.Id)];
}
