using Broker.Core.Audit;
using Broker.Core.Revocation;
using Broker.Revocation;

namespace Broker.Server.OperatorConsole;

/// <summary>One token still in force, as its issuance record shows it (never the token itself).</summary>
public sealed record LiveToken(string TokenId, string Subject, string TaskId, string Phase, IReadOnlyList<string> Scopes, DateTimeOffset IssuedAt, DateTimeOffset ExpiresAt);

/// <summary>
/// The tokens of an agent or a task that are still live: issued (per this node's audit log,
/// which records every issuance before the caller hears of it), not expired, not voided, and
/// not matched by any revocation this node knows.
/// </summary>
public sealed class LiveTokens(FileAuditSink audit, RevocationFeed feed, TimeProvider time)
{
    public IReadOnlyList<LiveToken> For(string? agent, string? taskId)
    {
        if (string.IsNullOrEmpty(agent) && string.IsNullOrEmpty(taskId))
        {
            return [];
        }

        var now = time.GetUtcNow();
        var records = AuditReader.ReadAll([audit.Directory]);
        var voided = records.Where(r => r.Event.EventId == AuditEventTypes.CredentialVoided.Id && r.Event.TokenId is not null)
            .Select(r => r.Event.TokenId!).ToHashSet(StringComparer.Ordinal);
        return records
            .Select(r => r.Event)
            .Where(e => e.EventId == AuditEventTypes.CredentialIssued.Id && e.Outcome == AuditOutcomes.Success
                && e.TokenId is not null && e.ExpiresAt > now && !voided.Contains(e.TokenId)
                && (string.IsNullOrEmpty(agent) || e.Subject == agent)
                && (string.IsNullOrEmpty(taskId) || e.TaskId == taskId))
            .Where(e => !feed.Index.IsRevoked(new TokenFacts(e.TokenId!, e.Subject ?? "", e.TaskId ?? "", e.Phase ?? "", e.Time), out _))
            .Select(e => new LiveToken(e.TokenId!, e.Subject ?? "", e.TaskId ?? "", e.Phase ?? "", e.Scopes ?? [], e.Time, e.ExpiresAt!.Value))
            .OrderByDescending(t => t.IssuedAt)
            .ToList();
    }
}
