using Broker.Core.Errors;

namespace Broker.Core.Attestation.Internal;

/// <summary>SPIFFE JWT-SVIDs: the <c>sub</c> names the trust domain whose JWT bundle must have signed it.</summary>
internal sealed class JwtSvidAttestor : CachedJwtAttestor
{
    public JwtSvidAttestor(AttestationOptions options, JwtProofValidator validator, Func<TrustIndex> trust, ValidatedProofCache cache)
        : base(options, validator, trust, cache)
    {
    }

    protected override async ValueTask<WorkloadIdentity> ValidateAsync(string token, CancellationToken cancellationToken)
    {
        var parts = JwsPreflight.Check(token, Options.MaxProofBytes, JwsProfile.JwtSvid);

        // The subject is read before the signature is checked only to choose which trust
        // domain's keys must have signed it; nothing else is believed until they verify.
        var subject = JwtProofValidator.ReadString(parts.Payload, "sub")
            ?? throw BrokerErrors.Attestation(BrokerErrors.AttestationClaimMissing, "JWT-SVID has no 'sub' claim");
        if (!SpiffeId.TryParse(subject, out var spiffeId, out var error))
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationSubjectInvalid, $"JWT-SVID subject is not a valid SPIFFE ID: {error}");
        }

        if (!Trust.TryGetDomain(spiffeId.TrustDomain, out var domain) || domain.JwtKeys is null)
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationTrustDomainUnknown, "JWT-SVID names a trust domain this broker does not trust for JWT-SVIDs");
        }

        var claims = JwtProofValidator.ReadClaims(parts.Payload);
        var key = await Validator.FindKeyAsync(parts, domain.JwtKeys, cancellationToken);
        await Validator.VerifySignatureAsync(token, parts, key);
        var expiresAt = Validator.CheckClaims(claims);
        var jti = JwtProofValidator.ReadJwtId(parts.Payload, domain.Policy.SingleUseProofs);

        var identity = new WorkloadIdentity(
            spiffeId.ToString(),
            AttestationKind.JwtSvid,
            spiffeId.TrustDomain,
            expiresAt,
            ProofId: jti is null ? null : ProofKeys.JwtSvid(spiffeId.TrustDomain, jti));
        return identity;
    }

    protected override RefreshingBundle<KeySet>? KeysOf(string trustSource) =>
        Trust.TryGetDomain(trustSource, out var domain) ? domain.JwtKeys : null;
}
