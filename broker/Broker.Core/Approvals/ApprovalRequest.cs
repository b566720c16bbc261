using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace Broker.Core.Approvals;

/// <summary>
/// Exactly what an agent asked for while a gated scope was in it. Immutable once stored: the
/// token issued after approval is minted from these values, never from a later request.
/// </summary>
/// <param name="Digest"><see cref="ComputeDigest"/> of the fields it covers.</param>
/// <param name="Risk">The agent's current runtime risk level when it asked (<c>unknown</c> when none was known).</param>
/// <param name="PopPublicKeyJwk">The proof-of-possession key the token will be bound to, if any.</param>
/// <param name="Owner">The agent rule's owner, who may never approve.</param>
public sealed record ApprovalRequest(
    string Id,
    string Digest,
    string Agent,
    string TaskId,
    TaskPhase Phase,
    IReadOnlyList<string> Scopes,
    string Audience,
    int TtlSeconds,
    string Risk,
    string? Justification,
    string? PopPublicKeyJwk,
    string? Owner,
    string PolicyDigest,
    DateTimeOffset CreatedAt,
    DateTimeOffset ExpiresAt,
    IReadOnlyList<ApprovalGate> Gates)
{
    /// <summary>Version of what <see cref="ComputeDigest"/> covers and how (v2: RFC 8785).</summary>
    public const string DigestVersion = "broker.approval.v2";

    /// <summary>
    /// <c>sha256:</c> + hex SHA-256 of the RFC 8785 (JCS) form of the object {v, agent, task,
    /// phase, scopes (distinct, sorted by UTF-16 code units), audience, ttl_seconds, risk,
    /// justification (null when none)}; docs/approvals.md shows how to recompute it.
    /// </summary>
    public static string ComputeDigest(string agent, string taskId, TaskPhase phase, IEnumerable<string> scopes, string audience, int ttlSeconds, string risk, string? justification)
    {
        var request = new JsonObject
        {
            ["v"] = DigestVersion,
            ["agent"] = agent,
            ["task"] = taskId,
            ["phase"] = phase.ToWire(),
            ["scopes"] = new JsonArray([.. scopes.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).Select(s => (JsonNode)JsonValue.Create(s)!)]),
            ["audience"] = audience,
            ["ttl_seconds"] = ttlSeconds,
            ["risk"] = risk,
            ["justification"] = string.IsNullOrEmpty(justification) ? null : justification,
        };
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(CanonicalJson.Serialize(request)));
    }

    /// <summary>True when <see cref="Digest"/> still matches the stored fields (the record was not altered).</summary>
    public bool DigestMatches() =>
        Digest == ComputeDigest(Agent, TaskId, Phase, Scopes, Audience, TtlSeconds, Risk, Justification);

    /// <summary>A fresh approval id: 128 random bits, URL-safe.</summary>
    public static string NewId() => "apr_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    /// <summary>An id this broker could have minted (checked before it reaches the store).</summary>
    public static bool IsWellFormedId(string? id) =>
        id is { Length: 36 } && id.StartsWith("apr_", StringComparison.Ordinal) && id.Skip(4).All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f');
}

/// <summary>One gate a request must pass: <see cref="Quorum"/> distinct approvers holding one of <see cref="Approvers"/>.</summary>
public sealed record ApprovalGate(IReadOnlyList<string> Scopes, IReadOnlyList<string> Approvers, int Quorum);

public enum ApprovalStatus
{
    Pending,
    Approved,
    Denied,
    Expired,
    Consumed,
}

/// <summary>One approver's yes.</summary>
public sealed record ApprovalVote(string Approver, DateTimeOffset At);

/// <summary>A stored request and where it stands.</summary>
/// <param name="Status">As stored; see <see cref="StatusAt"/> for what it means now.</param>
/// <param name="TokenId">The token issued when it was consumed.</param>
public sealed record ApprovalRecord(
    ApprovalRequest Request,
    ApprovalStatus Status,
    IReadOnlyList<ApprovalVote> Votes,
    string? DecidedBy,
    string? Reason,
    DateTimeOffset? DecidedAt,
    string? TokenId)
{
    /// <summary>Pending or approved past its expiry is expired, whether or not a node has marked it yet.</summary>
    public ApprovalStatus StatusAt(DateTimeOffset now) =>
        Status is ApprovalStatus.Pending or ApprovalStatus.Approved && Request.ExpiresAt <= now ? ApprovalStatus.Expired : Status;
}

public static class ApprovalStatusNames
{
    public static string ToWire(this ApprovalStatus status) => status switch
    {
        ApprovalStatus.Pending => "pending",
        ApprovalStatus.Approved => "approved",
        ApprovalStatus.Denied => "denied",
        ApprovalStatus.Expired => "expired",
        ApprovalStatus.Consumed => "consumed",
        _ => throw new ArgumentOutOfRangeException(nameof(status)),
    };

    public static ApprovalStatus Parse(string text) => text switch
    {
        "pending" => ApprovalStatus.Pending,
        "approved" => ApprovalStatus.Approved,
        "denied" => ApprovalStatus.Denied,
        "expired" => ApprovalStatus.Expired,
        "consumed" => ApprovalStatus.Consumed,
        _ => throw new FormatException($"'{text}' is not an approval status."),
    };
}
