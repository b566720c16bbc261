using System.Text.Json;
using Broker.Core.Errors;

namespace Broker.Core.Attestation.Internal;

/// <summary>OIDC workload tokens: <c>iss</c> must be allow-listed exactly; its keys must have signed it.</summary>
internal sealed class OidcTokenAttestor
{
    /// <summary>Longest accepted subject (it becomes part of the workload id).</summary>
    public const int MaxSubjectLength = 512;

    private readonly AttestationOptions _options;
    private readonly JwtProofValidator _validator;
    private readonly Func<TrustIndex> _trust;

    public OidcTokenAttestor(AttestationOptions options, JwtProofValidator validator, Func<TrustIndex> trust, ValidatedProofCache cache)
    {
        _options = options;
        _validator = validator;
        _trust = trust;
        Cache = cache;
    }

    public ValidatedProofCache Cache { get; }

    public async ValueTask<WorkloadIdentity> AttestAsync(string? token, CancellationToken cancellationToken)
    {
        JwsPreflight.CheckSize(token, _options.MaxProofBytes);
        var digest = ValidatedProofCache.Digest(token!);
        if (Cache.TryGet(digest, out var cached) && await StillTrustedAsync(cached, cancellationToken))
        {
            return cached;
        }

        var parts = JwsPreflight.Check(token, _options.MaxProofBytes, JwsProfile.Oidc);

        // As for JWT-SVIDs, iss only selects whose keys must verify the token.
        var issuer = JwtProofValidator.ReadString(parts.Payload, "iss")
            ?? throw BrokerErrors.Attestation(BrokerErrors.AttestationClaimMissing, "OIDC token has no 'iss' claim");
        if (!_trust().TryGetIssuer(issuer, out var trust))
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationIssuerUnknown, "OIDC token comes from an issuer this broker does not trust");
        }

        var claims = JwtProofValidator.ReadClaims(parts.Payload);
        var key = await _validator.FindKeyAsync(parts, trust.Keys, cancellationToken);
        await _validator.VerifySignatureAsync(token!, parts, key);
        var expiresAt = _validator.CheckClaims(claims);
        var subject = ReadSubject(parts.Payload, trust.Policy.SubjectClaim);
        var jti = JwtProofValidator.ReadJwtId(parts.Payload, trust.Policy.SingleUseProofs);

        var identity = new WorkloadIdentity(
            trust.Policy.WorkloadIdPrefix + subject,
            AttestationKind.OidcToken,
            issuer,
            expiresAt,
            // Issuer identifiers carry no fragment (OpenID Connect Discovery §2), so '#' cannot
            // make two issuers' proof ids collide.
            ProofId: jti is null ? null : $"{issuer}#{jti}");
        Cache.Add(digest, identity);
        return identity;
    }

    /// <summary>
    /// Bundles refresh when proofs need them; a stream of cached proofs must not keep a
    /// rotated-out key trusted. Bringing the source's bundle up to date clears the cache when
    /// its content changed, and then the proof is validated afresh.
    /// </summary>
    private async ValueTask<bool> StillTrustedAsync(WorkloadIdentity cached, CancellationToken cancellationToken)
    {
        var generation = Cache.Generation;
        if (!(_trust().TryGetIssuer(cached.TrustSource, out var cachedIssuer) && cachedIssuer.Keys is { } keys))
        {
            return false;
        }

        await keys.GetAsync(cancellationToken);
        return Cache.Generation == generation;
    }

    private static string ReadSubject(JsonElement payload, string claim)
    {
        if (!payload.TryGetProperty(claim, out var value) || (value.ValueKind == JsonValueKind.String && value.GetString()!.Length == 0))
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationClaimMissing, $"OIDC token has no '{claim}' claim");
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationSubjectInvalid, $"OIDC token '{claim}' claim is not a string");
        }

        var subject = value.GetString()!;
        if (subject.Length > MaxSubjectLength || subject.Any(char.IsControl))
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationSubjectInvalid, $"OIDC token '{claim}' claim is too long or holds control characters");
        }

        return subject;
    }
}
