using Broker.Core.Attestation;

namespace Broker.Core.Issuance;

/// <summary>A request for a credential, as the domain sees it (already off the wire).</summary>
/// <param name="Phase">Null when the caller named no valid phase.</param>
/// <param name="RequestedTtl">Null when the caller left it to the phase maximum.</param>
/// <param name="PhaseFromPolicy">A null <paramref name="Phase"/> means the agent rule's <c>default_phase</c> (the OAuth door), not an invalid phase.</param>
public sealed record IssueRequest(
    string TaskId,
    TaskPhase? Phase,
    IReadOnlyList<string> Scopes,
    string Audience,
    TimeSpan? RequestedTtl,
    AttestationEvidence? Evidence,
    string? PopPublicKeyJwk,
    string? Justification,
    RequestContext Context,
    bool PhaseFromPolicy = false,
    DpopPresentation? Dpop = null);

/// <summary>Who is asking, from where, under which correlation id.</summary>
public sealed record RequestContext(string CorrelationId, string? Peer);

/// <summary>A credential that has been recorded, signed and audited.</summary>
public sealed record IssuedCredential(
    string AccessToken,
    string TokenId,
    IReadOnlyList<string> GrantedScopes,
    DateTimeOffset ExpiresAt,
    string Subject,
    TaskPhase Phase,
    string PolicyDigest,
    string TokenType,
    string? ApprovalId = null);

/// <summary>What IssueCredential answers: a credential, or a pending approval request (never both).</summary>
public sealed record IssueOutcome(IssuedCredential? Credential, Approvals.ApprovalRequest? Pending);

/// <summary>Where a wait on an approval stands: still pending (no credential), or issued (a token, or a downstream credential).</summary>
public sealed record ApprovalProgress(Approvals.ApprovalRecord Record, IssuedCredential? Credential, Secrets.IssuedSecret? Secret = null);

public sealed record EndTaskRequest(string TaskId, AttestationEvidence? Evidence, string? Reason, RequestContext Context);
