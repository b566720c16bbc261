namespace Broker.Revocation;

public enum RevocationKind
{
    /// <summary>One token by <c>jti</c>.</summary>
    Token,

    /// <summary>Every token of a task.</summary>
    Task,

    /// <summary>Tokens of one phase of a task issued up to the revocation.</summary>
    TaskPhase,

    /// <summary>Tokens of one workload issued up to the revocation.</summary>
    Agent,

    /// <summary>Tokens of every workload in a SPIFFE trust domain issued up to the revocation.</summary>
    TrustDomain,

    /// <summary>Every token issued before <see cref="RevocationSelector.Before"/>.</summary>
    IssuedBefore,

    /// <summary>One workload's tokens issued before <see cref="RevocationSelector.Before"/>.</summary>
    AgentIssuedBefore,
}

/// <summary>What a revocation matches. <see cref="Phase"/> is the wire name (planning, execution, recovery).</summary>
public sealed record RevocationSelector(RevocationKind Kind, string Value, string? Phase = null, DateTimeOffset? Before = null)
{
    public static RevocationSelector ForToken(string tokenId) => new(RevocationKind.Token, tokenId);

    public static RevocationSelector ForTask(string taskId) => new(RevocationKind.Task, taskId);

    public static RevocationSelector ForTaskPhase(string taskId, string phase) => new(RevocationKind.TaskPhase, taskId, phase);

    public static RevocationSelector ForAgent(string workloadId) => new(RevocationKind.Agent, workloadId);

    public static RevocationSelector ForTrustDomain(string trustDomain) => new(RevocationKind.TrustDomain, trustDomain);

    public static RevocationSelector IssuedBeforeTime(DateTimeOffset before, string? workloadId = null) =>
        workloadId is null
            ? new(RevocationKind.IssuedBefore, "", Before: before)
            : new(RevocationKind.AgentIssuedBefore, workloadId, Before: before);

    public override string ToString() => Kind switch
    {
        RevocationKind.TaskPhase => $"task-phase {Value}/{Phase}",
        RevocationKind.IssuedBefore => $"issued-before {Before:O}",
        RevocationKind.AgentIssuedBefore => $"agent-issued-before {Value} {Before:O}",
        _ => $"{Kind.ToString().ToLowerInvariant()} {Value}",
    };
}

/// <summary>A revocation in force.</summary>
/// <param name="Id">Position in the revocation log (resume cursor).</param>
/// <param name="ExpiresAt">No token the selector can match outlives this.</param>
public sealed record RevocationEntry(
    string Id,
    RevocationSelector Selector,
    string Actor,
    string Reason,
    DateTimeOffset RevokedAt,
    DateTimeOffset ExpiresAt);

/// <summary>The facts of a token that revocation matches on, read from its claims.</summary>
/// <param name="Actors">A delegated token's actors (its <c>act.sub</c> chain, current actor first); null for a direct token.</param>
/// <param name="Ancestors">A delegated token's ancestor token ids (<c>ancestor_jti</c>, parent first); null for a direct token.</param>
/// <param name="AncestorPhase">A delegated token's <c>ancestor_phase</c>: every ancestor is of this phase or of <paramref name="Phase"/>.</param>
public readonly record struct TokenFacts(
    string TokenId,
    string Subject,
    string TaskId,
    string Phase,
    DateTimeOffset IssuedAt,
    IReadOnlyList<string>? Actors = null,
    IReadOnlyList<string>? Ancestors = null,
    string? AncestorPhase = null)
{
    /// <summary>The SPIFFE trust domain of the subject, or null for non-SPIFFE subjects.</summary>
    public string? TrustDomain => TryGetTrustDomain(out var domain) ? domain.ToString() : null;

    /// <summary>The SPIFFE trust domain of the subject without allocating; false for non-SPIFFE subjects.</summary>
    public bool TryGetTrustDomain(out ReadOnlySpan<char> trustDomain) => TryGetTrustDomain(Subject, out trustDomain);

    /// <summary>The SPIFFE trust domain of a workload id without allocating; false for non-SPIFFE ids.</summary>
    public static bool TryGetTrustDomain(string workloadId, out ReadOnlySpan<char> trustDomain)
    {
        const string scheme = "spiffe://";
        if (!workloadId.StartsWith(scheme, StringComparison.Ordinal))
        {
            trustDomain = default;
            return false;
        }

        var rest = workloadId.AsSpan(scheme.Length);
        var end = rest.IndexOf('/');
        trustDomain = end < 0 ? rest : rest[..end];
        return true;
    }
}
