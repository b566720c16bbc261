using System.Text.Json.Serialization;

namespace Broker.Core.Audit;

/// <summary>
/// One identity event. Never carries a credential (token ids only) or model telemetry.
/// Free text from callers is bounded before it gets here.
/// </summary>
public sealed record AuditEvent
{
    /// <summary>Position in this node's chain; set by the sink when the record is written, never by callers.</summary>
    [JsonPropertyOrder(-3)]
    public long? Seq { get; init; }

    /// <summary>The node that wrote the record; set by the sink.</summary>
    [JsonPropertyOrder(-2)]
    public string? Node { get; init; }

    /// <summary>SHA-256 (hex) of the previous record's exact bytes; set by the sink.</summary>
    [JsonPropertyOrder(-1)]
    public string? Prev { get; init; }

    /// <summary>Stable numeric id of the event type (see docs/audit.md).</summary>
    public required int EventId { get; init; }

    /// <summary>Stable name of the event type, e.g. <c>credential.issued</c>.</summary>
    public required string Type { get; init; }

    public required DateTimeOffset Time { get; init; }

    /// <summary>Correlates the events of one request.</summary>
    public required string CorrelationId { get; init; }

    public string? PolicyDigest { get; init; }

    /// <summary><c>success</c> or <c>failure</c>.</summary>
    public required string Outcome { get; init; }

    /// <summary>Refusal reason code when <see cref="Outcome"/> is failure.</summary>
    public string? Reason { get; init; }

    public string? Subject { get; init; }
    public string? AttestationKind { get; init; }
    public string? TrustSource { get; init; }
    public string? TaskId { get; init; }
    public string? Phase { get; init; }
    public string? TokenId { get; init; }
    public IReadOnlyList<string>? Scopes { get; init; }
    public string? Audience { get; init; }
    public DateTimeOffset? ExpiresAt { get; init; }
    public string? Actor { get; init; }
    public string? Detail { get; init; }
    public string? Peer { get; init; }

    /// <summary>What a revocation matched, e.g. <c>task t-42</c>.</summary>
    public string? Selector { get; init; }

    /// <summary>The revocation's position in the revocation log.</summary>
    public string? RevocationId { get; init; }

    /// <summary>The approval request an approval event, or a credential issued after approval, belongs to.</summary>
    public string? ApprovalId { get; init; }

    /// <summary>The digest of exactly what the approval covers (agent, task, phase, scopes, audience, TTL, risk, justification).</summary>
    public string? ApprovalDigest { get; init; }

    /// <summary>On <c>audit.checkpoint</c> only: the signed summary of the segment just closed.</summary>
    public AuditCheckpoint? Checkpoint { get; init; }

    /// <summary>On <c>secret.*</c> events: the downstream credential's lease (docs/secrets.md). Never the credential itself.</summary>
    public string? LeaseId { get; init; }

    /// <summary>On <c>secret.*</c> events: the secret engine (<c>secret_engines:</c> name).</summary>
    public string? Engine { get; init; }

    /// <summary>On <c>secret.*</c> events: the role the lease's login was a member of.</summary>
    public string? Role { get; init; }

    /// <summary>On <c>audit.tamper_acknowledged</c> only: each finding acknowledged, as <see cref="AuditProblem.Key"/>.</summary>
    public IReadOnlyList<string>? Findings { get; init; }

    /// <summary>On <c>delegation.*</c> events: the token exchanged from (the <c>subject_token</c>'s id).</summary>
    public string? ParentTokenId { get; init; }

    /// <summary>On <c>delegation.*</c> events: the agents of the chain, the task's owner first and the new actor last.</summary>
    public IReadOnlyList<string>? Chain { get; init; }

    /// <summary>On <c>delegation.*</c> events: how many hops the new token is from its owner's own token.</summary>
    public int? Depth { get; init; }

    /// <summary>On <c>refusals.aggregated</c> only: how many refusals past the caller's budget the record stands for.</summary>
    public long? Count { get; init; }

    /// <summary>On <c>refusals.aggregated</c> only: when the first of them was refused.</summary>
    public DateTimeOffset? FirstAt { get; init; }

    /// <summary>On <c>refusals.aggregated</c> only: when the last of them was refused.</summary>
    public DateTimeOffset? LastAt { get; init; }
}

/// <summary>
/// Event type ids, banded: 1xxx attestation, 2xxx issuance, 3xxx tasks, 4xxx revocation,
/// 5xxx approvals, 6xxx risk, 7xxx the audit log itself, 8xxx operators, 9xxx policy and keys.
/// Ids never change meaning; docs/audit.md documents each one.
/// </summary>
public static class AuditEventTypes
{
    public static readonly (int Id, string Name) AttestationAccepted = (1000, "attestation.accepted");
    public static readonly (int Id, string Name) AttestationRefused = (1001, "attestation.refused");

    /// <summary>Refusals past a caller's budget in one window, counted instead of recorded one each (docs/audit.md).</summary>
    public static readonly (int Id, string Name) RefusalsAggregated = (1010, "refusals.aggregated");
    public static readonly (int Id, string Name) CredentialIssued = (2000, "credential.issued");
    public static readonly (int Id, string Name) CredentialRefused = (2001, "credential.refused");

    /// <summary>Cancels a credential.issued record whose token was never handed out (shared state refused it after the record was written).</summary>
    public static readonly (int Id, string Name) CredentialVoided = (2002, "credential.voided");

    /// <summary>A token was exchanged down to a sub-agent (RFC 8693 actor token): parent token, chain and depth recorded.</summary>
    public static readonly (int Id, string Name) DelegationIssued = (2400, "delegation.issued");

    /// <summary>A delegation exchange was refused; the reason says which check (docs/errors.md).</summary>
    public static readonly (int Id, string Name) DelegationRefused = (2401, "delegation.refused");

    /// <summary>A downstream credential was handed out under a lease (docs/secrets.md).</summary>
    public static readonly (int Id, string Name) SecretIssued = (2100, "secret.issued");
    public static readonly (int Id, string Name) SecretRefused = (2101, "secret.refused");

    /// <summary>A lease ended: its login dropped and its sessions terminated (reason: revoked, expired, voided).</summary>
    public static readonly (int Id, string Name) SecretEnded = (2102, "secret.ended");

    /// <summary>Ending a lease failed on the engine; it is retried until it succeeds.</summary>
    public static readonly (int Id, string Name) SecretCleanupFailed = (2103, "secret.cleanup_failed");

    /// <summary>A resource server created a Shared Signals stream (docs/ssf.md): actor, audience, stream id and delivery in detail.</summary>
    public static readonly (int Id, string Name) SsfStreamCreated = (2420, "ssf.stream_created");

    /// <summary>A resource server deleted its Shared Signals stream; its undelivered events went with it.</summary>
    public static readonly (int Id, string Name) SsfStreamDeleted = (2421, "ssf.stream_deleted");
    public static readonly (int Id, string Name) TaskEnded = (3000, "task.ended");
    public static readonly (int Id, string Name) TaskEndRefused = (3001, "task.end_refused");
    public static readonly (int Id, string Name) TaskPhaseChanged = (3002, "task.phase_changed");
    public static readonly (int Id, string Name) Revoked = (4000, "credential.revoked");
    public static readonly (int Id, string Name) RevokeRefused = (4001, "revocation.refused");
    public static readonly (int Id, string Name) IssuanceFrozen = (4002, "issuance.frozen");
    public static readonly (int Id, string Name) IssuanceUnfrozen = (4003, "issuance.unfrozen");
    public static readonly (int Id, string Name) ApprovalRequested = (5000, "approval.requested");
    public static readonly (int Id, string Name) ApprovalApproved = (5001, "approval.approved");
    public static readonly (int Id, string Name) ApprovalDenied = (5002, "approval.denied");
    public static readonly (int Id, string Name) ApprovalExpired = (5003, "approval.expired");
    public static readonly (int Id, string Name) ApprovalConsumed = (5004, "approval.consumed");
    // A risk refusal is credential.refused (2001) with a RISK_* reason and the signal id; a risk
    // containment is credential.revoked (4000) by actor broker:risk. These record the gate's own state.
    public static readonly (int Id, string Name) RiskSignalRefused = (6002, "risk.signal_refused");
    public static readonly (int Id, string Name) RiskFrozen = (6003, "risk.frozen");
    public static readonly (int Id, string Name) RiskUnfrozen = (6004, "risk.unfrozen");
    public static readonly (int Id, string Name) RiskCleared = (6005, "risk.cleared");

    /// <summary>First record of every segment after the first: the signed summary of the segment before it.</summary>
    public static readonly (int Id, string Name) AuditCheckpoint = (7000, "audit.checkpoint");

    /// <summary>First record of the segment a node started in after an operator acknowledged findings of tampering.</summary>
    public static readonly (int Id, string Name) AuditTamperAcknowledged = (7001, "audit.tamper_acknowledged");
    public static readonly (int Id, string Name) OperatorAuthenticationFailed = (8000, "operator.authentication_failed");

    /// <summary>An operator opened a web console session (actor; detail says how: oidc or dev).</summary>
    public static readonly (int Id, string Name) ConsoleSignedIn = (8020, "console.signed_in");

    /// <summary>A console form post was refused before reaching any domain service (e.g. no valid anti-forgery token).</summary>
    public static readonly (int Id, string Name) ConsoleRequestRefused = (8021, "console.request_refused");
    public static readonly (int Id, string Name) PolicyLoaded = (9000, "policy.loaded");
    public static readonly (int Id, string Name) PolicyRefused = (9001, "policy.refused");
    public static readonly (int Id, string Name) SigningKeyActivated = (9100, "signing_key.activated");
    public static readonly (int Id, string Name) SigningKeyRetired = (9101, "signing_key.retired");

    /// <summary>Every type above, for the schema document and for readers that list them.</summary>
    public static IReadOnlyList<(int Id, string Name)> All { get; } =
    [
        AttestationAccepted, AttestationRefused, RefusalsAggregated, CredentialIssued, CredentialRefused, CredentialVoided,
        DelegationIssued, DelegationRefused, SecretIssued, SecretRefused, SecretEnded, SecretCleanupFailed, SsfStreamCreated, SsfStreamDeleted,
        TaskEnded, TaskEndRefused, TaskPhaseChanged, Revoked, RevokeRefused, IssuanceFrozen, IssuanceUnfrozen,
        ApprovalRequested, ApprovalApproved, ApprovalDenied, ApprovalExpired, ApprovalConsumed,
        RiskSignalRefused, RiskFrozen, RiskUnfrozen, RiskCleared, AuditCheckpoint, AuditTamperAcknowledged, OperatorAuthenticationFailed,
        ConsoleSignedIn, ConsoleRequestRefused,
        PolicyLoaded, PolicyRefused, SigningKeyActivated, SigningKeyRetired,
    ];
}
