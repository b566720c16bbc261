namespace Broker.Core.Errors;

/// <summary>
/// The one place refusals are made. Each reason code is listed in docs/errors.md; keep the
/// two in step. Messages are written for the caller and never include key material.
/// </summary>
public static class BrokerErrors
{
    public const string Domain = "broker.v1";

    // Attestation: the caller could not prove what it is.
    public const string AttestationMissing = "ATTESTATION_MISSING";
    public const string AttestationMalformed = "ATTESTATION_MALFORMED";
    public const string AttestationTooLarge = "ATTESTATION_TOO_LARGE";
    public const string AttestationAlgorithmNotAllowed = "ATTESTATION_ALG_NOT_ALLOWED";
    public const string AttestationHeaderNotAllowed = "ATTESTATION_HEADER_NOT_ALLOWED";
    public const string AttestationKeyUnknown = "ATTESTATION_KEY_UNKNOWN";
    public const string AttestationSignatureInvalid = "ATTESTATION_SIGNATURE_INVALID";
    public const string AttestationExpired = "ATTESTATION_EXPIRED";
    public const string AttestationNotYetValid = "ATTESTATION_NOT_YET_VALID";
    public const string AttestationLifetimeTooLong = "ATTESTATION_LIFETIME_TOO_LONG";
    public const string AttestationClaimMissing = "ATTESTATION_CLAIM_MISSING";
    public const string AttestationAudienceMismatch = "ATTESTATION_AUDIENCE_MISMATCH";
    public const string AttestationSubjectInvalid = "ATTESTATION_SUBJECT_INVALID";
    public const string AttestationTrustDomainUnknown = "ATTESTATION_TRUST_DOMAIN_UNKNOWN";
    public const string AttestationIssuerUnknown = "ATTESTATION_ISSUER_UNKNOWN";
    public const string AttestationReplayed = "ATTESTATION_REPLAYED";
    public const string AttestationCertificateInvalid = "ATTESTATION_CERTIFICATE_INVALID";
    public const string AttestationCertificateExpired = "ATTESTATION_CERTIFICATE_EXPIRED";
    public const string TrustBundleUnavailable = "TRUST_BUNDLE_UNAVAILABLE";

    // Request shape.
    public const string TaskIdInvalid = "TASK_ID_INVALID";
    public const string PhaseInvalid = "PHASE_INVALID";
    public const string PhaseRequired = "PHASE_REQUIRED";
    public const string ScopesInvalid = "SCOPES_INVALID";
    public const string AudienceInvalid = "AUDIENCE_INVALID";
    public const string TtlInvalid = "TTL_INVALID";
    public const string PopKeyInvalid = "POP_KEY_INVALID";
    public const string TextTooLong = "TEXT_TOO_LONG";

    // Policy.
    public const string AgentNotAllowed = "AGENT_NOT_ALLOWED";
    public const string PhaseNotAllowed = "PHASE_NOT_ALLOWED";
    public const string ScopeNotAllowed = "SCOPE_NOT_ALLOWED";
    public const string AudienceNotAllowed = "AUDIENCE_NOT_ALLOWED";
    public const string TtlExceedsPolicy = "TTL_EXCEEDS_POLICY";
    public const string TaskNotOwned = "TASK_NOT_OWNED";
    public const string TaskLimitReached = "TASK_LIMIT_REACHED";

    // Runtime risk (docs/risk.md). Messages name the level and the signal id, never evidence.
    public const string RiskTooHigh = "RISK_TOO_HIGH";
    public const string RiskUnknown = "RISK_UNKNOWN";
    public const string RiskStateUnavailable = "RISK_STATE_UNAVAILABLE";
    public const string AgentFrozen = "AGENT_FROZEN";

    // Signal intake: the runtime-protection service reporting risk.
    public const string SignalSourceNotAllowed = "SIGNAL_SOURCE_NOT_ALLOWED";
    public const string SignalSelfReport = "SIGNAL_SELF_REPORT";
    public const string SignalInvalid = "SIGNAL_INVALID";
    public const string SignalLevelUnknown = "SIGNAL_LEVEL_UNKNOWN";
    public const string SignalFromFuture = "SIGNAL_FROM_FUTURE";
    public const string SignalExpired = "SIGNAL_EXPIRED";
    public const string SignalIdReused = "SIGNAL_ID_REUSED";
    public const string TelemetryUnavailable = "TELEMETRY_UNAVAILABLE";

    // Approval gates (docs/approvals.md).
    public const string JustificationRequired = "JUSTIFICATION_REQUIRED";
    public const string ApprovalIdInvalid = "APPROVAL_ID_INVALID";
    public const string ApprovalNotFound = "APPROVAL_NOT_FOUND";
    public const string ApprovalNotYours = "APPROVAL_NOT_YOURS";
    public const string ApprovalDenied = "APPROVAL_DENIED";
    public const string ApprovalExpired = "APPROVAL_EXPIRED";
    public const string ApprovalConsumed = "APPROVAL_CONSUMED";
    public const string ApprovalNotPending = "APPROVAL_NOT_PENDING";
    public const string ApprovalAlreadyGiven = "APPROVAL_ALREADY_GIVEN";
    public const string ApproverNotEligible = "APPROVER_NOT_ELIGIBLE";
    public const string ApproverIsOwner = "APPROVER_IS_OWNER";
    public const string ApproverIsRequester = "APPROVER_IS_REQUESTER";
    public const string ApprovalInvalid = "APPROVAL_INVALID";

    // Task state.
    public const string TaskEnded = "TASK_ENDED";

    // Delegation to sub-agents (RFC 8693 actor tokens, docs/oauth.md): the subject token, then policy.
    public const string SubjectTokenInvalid = "SUBJECT_TOKEN_INVALID";
    public const string SubjectTokenExpired = "SUBJECT_TOKEN_EXPIRED";
    public const string SubjectTokenRevoked = "SUBJECT_TOKEN_REVOKED";
    public const string SubjectTokenBound = "SUBJECT_TOKEN_BOUND";
    public const string DelegationNotAllowed = "DELEGATION_NOT_ALLOWED";
    public const string DelegationDepthExceeded = "DELEGATION_DEPTH_EXCEEDED";
    public const string ScopeNotSubset = "SCOPE_NOT_SUBSET";
    public const string PhaseEscalation = "PHASE_ESCALATION";
    public const string DelegationAudienceMismatch = "DELEGATION_AUDIENCE_MISMATCH";
    public const string DelegationApprovalUnsupported = "DELEGATION_APPROVAL_UNSUPPORTED";

    // Dependencies.
    public const string StateUnavailable = "STATE_UNAVAILABLE";
    public const string AuditUnavailable = "AUDIT_UNAVAILABLE";
    public const string PolicyUnavailable = "POLICY_UNAVAILABLE";
    public const string RevocationStateUnknown = "REVOCATION_STATE_UNKNOWN";
    public const string RevocationStateLost = "REVOCATION_STATE_LOST";
    public const string IssuanceFrozen = "ISSUANCE_FROZEN";

    // Operators and revocation.
    public const string OperatorUnauthenticated = "OPERATOR_UNAUTHENTICATED";
    public const string OperatorRoleMissing = "OPERATOR_ROLE_MISSING";
    public const string SelectorInvalid = "SELECTOR_INVALID";
    public const string ReasonRequired = "REASON_REQUIRED";
    public const string BatchTooLarge = "BATCH_TOO_LARGE";
    public const string TokenNotHeld = "TOKEN_NOT_HELD";

    // DPoP proofs (RFC 9449) at the token endpoint; the resource-server SDK uses the same codes (docs/oauth.md).
    public const string DpopProofInvalid = Jose.DpopReasons.ProofInvalid;
    public const string DpopProofTargetMismatch = Jose.DpopReasons.TargetMismatch;
    public const string DpopProofStale = Jose.DpopReasons.Stale;
    public const string DpopProofReplayed = Jose.DpopReasons.Replayed;
    public const string DpopNonceRequired = Jose.DpopReasons.NonceRequired;
    public const string DpopProofMissing = Jose.DpopReasons.ProofMissing;

    // Resource servers (WatchRevocations, Introspect) and rate limits (docs/resource-server.md, SECURITY.md).
    public const string ResourceServerTokenMissing = "RESOURCE_SERVER_TOKEN_MISSING";
    public const string ResourceServerTokenInvalid = "RESOURCE_SERVER_TOKEN_INVALID";
    public const string ResourceServerRoleMissing = "RESOURCE_SERVER_ROLE_MISSING";
    public const string WatchStreamsExhausted = "WATCH_STREAMS_EXHAUSTED";
    public const string RateLimited = "RATE_LIMITED";

    public static BrokerException Attestation(string reason, string message) =>
        new(FailureKind.Unauthenticated, reason, message);

    public static BrokerException InvalidArgument(string reason, string message) =>
        new(FailureKind.InvalidArgument, reason, message);

    public static BrokerException PermissionDenied(string reason, string message, IReadOnlyDictionary<string, string>? metadata = null) =>
        new(FailureKind.PermissionDenied, reason, message, metadata);

    public static BrokerException FailedPrecondition(string reason, string message) =>
        new(FailureKind.FailedPrecondition, reason, message);

    public static BrokerException Unauthenticated(string reason, string message) =>
        new(FailureKind.Unauthenticated, reason, message);

    public static BrokerException ResourceExhausted(string reason, string message, IReadOnlyDictionary<string, string>? metadata = null) =>
        new(FailureKind.ResourceExhausted, reason, message, metadata);

    public static BrokerException Unavailable(string reason, string message, Exception? inner = null) =>
        new(FailureKind.Unavailable, reason, message, inner: inner);
}
