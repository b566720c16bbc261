namespace Broker.Core.Audit;

/// <summary>
/// A copy of the log somewhere else (a Redis stream for a cluster-wide view). The file sink
/// hands it each batch only after the batch is durable and its callers are released, on the
/// writer thread: it must not block (queue or send asynchronously) and must not throw. A mirror
/// that fails loses mirror records, never local ones; the local segments stay the record.
/// </summary>
public interface IAuditMirror
{
    /// <summary>Durable records, each exactly as written and ending with a newline, oldest first.</summary>
    void Publish(ReadOnlyMemory<byte> lines);
}
