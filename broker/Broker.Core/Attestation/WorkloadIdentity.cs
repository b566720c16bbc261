namespace Broker.Core.Attestation;

/// <summary>A workload identity proven by attestation.</summary>
/// <param name="WorkloadId">The identity policy matches on and tokens name as <c>sub</c>: a SPIFFE ID, or the mapped OIDC subject.</param>
/// <param name="Kind">How it was proven.</param>
/// <param name="TrustSource">The SPIFFE trust domain or OIDC issuer that vouched for it.</param>
/// <param name="ProofExpiresAt">When the proof stops being valid.</param>
/// <param name="ProofId">The proof's <c>jti</c> when its trust source makes proofs single-use; consumed at issuance.</param>
/// <param name="CertificateThumbprint">base64url SHA-256 of the client certificate (mTLS), for <c>cnf.x5t#S256</c>.</param>
public sealed record WorkloadIdentity(
    string WorkloadId,
    AttestationKind Kind,
    string TrustSource,
    DateTimeOffset ProofExpiresAt,
    string? ProofId = null,
    string? CertificateThumbprint = null);
