namespace Broker.Core.Audit;

/// <summary>
/// Somewhere off the host that keeps each node's signed chain head (Redis for a fleet). A head
/// only moves forward: a node whose log no longer reaches the head stored for it has lost records.
/// </summary>
public interface IAuditHeadStore
{
    /// <summary>The head stored for <paramref name="node"/>, or null when none; read once at start, before the log is opened.</summary>
    /// <exception cref="Exception">The store cannot be read (the caller decides what that means).</exception>
    AuditHead? Read(string node);

    /// <summary>Every node's stored head.</summary>
    Task<IReadOnlyList<AuditHead>> ReadAllAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Stores <paramref name="head"/> if it is ahead of the stored one (or equal to it); with
    /// <paramref name="replace"/>, unconditionally (after an acknowledged tamper). Returns null when
    /// stored, or the stored head that is ahead of it or diverges from it.
    /// </summary>
    Task<AuditHead?> PublishAsync(AuditHead head, bool replace, CancellationToken cancellationToken);
}
