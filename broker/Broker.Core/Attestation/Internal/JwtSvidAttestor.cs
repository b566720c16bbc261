using Broker.Core.Errors;

namespace Broker.Core.Attestation.Internal;

/// <summary>SPIFFE JWT-SVIDs: the <c>sub</c> names the trust domain whose JWT bundle must have signed it.</summary>
internal sealed class JwtSvidAttestor
{
    private readonly AttestationOptions _options;
    private readonly JwtProofValidator _validator;
    private readonly Func<TrustIndex> _trust;

    public JwtSvidAttestor(AttestationOptions options, JwtProofValidator validator, Func<TrustIndex> trust, ValidatedProofCache cache)
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

        var parts = JwsPreflight.Check(token, _options.MaxProofBytes, JwsProfile.JwtSvid);

        // The subject is read before the signature is checked only to choose which trust
        // domain's keys must have signed it; nothing else is believed until they verify.
        var subject = JwtProofValidator.ReadString(parts.Payload, "sub")
            ?? throw BrokerErrors.Attestation(BrokerErrors.AttestationClaimMissing, "JWT-SVID has no 'sub' claim");
        if (!SpiffeId.TryParse(subject, out var spiffeId, out var error))
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationSubjectInvalid, $"JWT-SVID subject is not a valid SPIFFE ID: {error}");
        }

        if (!_trust().TryGetDomain(spiffeId.TrustDomain, out var domain) || domain.JwtKeys is null)
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationTrustDomainUnknown, "JWT-SVID names a trust domain this broker does not trust for JWT-SVIDs");
        }

        var claims = JwtProofValidator.ReadClaims(parts.Payload);
        var key = await _validator.FindKeyAsync(parts, domain.JwtKeys, cancellationToken);
        await _validator.VerifySignatureAsync(token!, parts, key);
        var expiresAt = _validator.CheckClaims(claims);
        var jti = JwtProofValidator.ReadJwtId(parts.Payload, domain.Policy.SingleUseProofs);

        var identity = new WorkloadIdentity(
            spiffeId.ToString(),
            AttestationKind.JwtSvid,
            spiffeId.TrustDomain,
            expiresAt,
            ProofId: jti is null ? null : $"{spiffeId.TrustDomain}:{jti}");
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
        if (!(_trust().TryGetDomain(cached.TrustSource, out var cachedDomain) && cachedDomain.JwtKeys is { } keys))
        {
            return false;
        }

        await keys.GetAsync(cancellationToken);
        return Cache.Generation == generation;
    }
}
