using Broker.Core.Attestation;
using Broker.Core.Issuance;

namespace Broker.Core.Secrets;

/// <summary>A request for a downstream credential, as the domain sees it (already off the wire).</summary>
/// <param name="Phase">Null when the caller named no valid phase.</param>
/// <param name="RequestedTtl">Null when the caller left it to the phase's max_lease_ttl.</param>
public sealed record SecretRequest(
    string TaskId,
    TaskPhase? Phase,
    string Engine,
    string Role,
    TimeSpan? RequestedTtl,
    AttestationEvidence? Evidence,
    string? Justification,
    RequestContext Context);

/// <summary>A downstream credential handed out under a recorded, audited lease.</summary>
public sealed record IssuedSecret(
    DownstreamLogin Login,
    string LeaseId,
    DateTimeOffset ExpiresAt,
    string Engine,
    string Role,
    TaskPhase Phase,
    string Subject,
    string PolicyDigest,
    string? ApprovalId);

/// <summary>What IssueSecret answers: a credential, or a pending approval request (never both).</summary>
public sealed record SecretOutcome(IssuedSecret? Secret, Approvals.ApprovalRequest? Pending);
