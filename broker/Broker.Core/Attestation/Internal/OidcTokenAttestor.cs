using System.Text.Json;
using Broker.Core.Errors;

namespace Broker.Core.Attestation.Internal;

/// <summary>OIDC workload tokens: <c>iss</c> must be allow-listed exactly; its keys must have signed it.</summary>
internal sealed class OidcTokenAttestor : CachedJwtAttestor
{
    /// <summary>Longest accepted subject (it becomes part of the workload id).</summary>
    public const int MaxSubjectLength = 512;

    public OidcTokenAttestor(AttestationOptions options, JwtProofValidator validator, Func<TrustIndex> trust, ValidatedProofCache cache)
        : base(options, validator, trust, cache)
    {
    }

    protected override async ValueTask<WorkloadIdentity> ValidateAsync(string token, CancellationToken cancellationToken)
    {
        var parts = JwsPreflight.Check(token, Options.MaxProofBytes, JwsProfile.Oidc);

        // As for JWT-SVIDs, iss only selects whose keys must verify the token.
        var issuer = JwtProofValidator.ReadString(parts.Payload, "iss")
            ?? throw BrokerErrors.Attestation(BrokerErrors.AttestationClaimMissing, "OIDC token has no 'iss' claim");
        if (!Trust.TryGetIssuer(issuer, out var trust))
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationIssuerUnknown, "OIDC token comes from an issuer this broker does not trust");
        }

        var claims = JwtProofValidator.ReadClaims(parts.Payload);
        var key = await Validator.FindKeyAsync(parts, trust.Keys, cancellationToken);
        await Validator.VerifySignatureAsync(token, parts, key);
        var expiresAt = Validator.CheckClaims(claims);
        var subject = ReadSubject(parts.Payload, trust.Policy.SubjectClaim);
        var jti = JwtProofValidator.ReadJwtId(parts.Payload, trust.Policy.SingleUseProofs);

        var identity = new WorkloadIdentity(
            trust.Policy.WorkloadIdPrefix + subject,
            AttestationKind.OidcToken,
            issuer,
            expiresAt,
            // Issuer identifiers carry no fragment (OpenID Connect Discovery §2), so '#' cannot
            // make two issuers' proof ids collide.
            ProofId: jti is null ? null : ProofKeys.Oidc(issuer, jti));
        return identity;
    }

    protected override RefreshingBundle<KeySet>? KeysOf(string trustSource) =>
        Trust.TryGetIssuer(trustSource, out var issuer) ? issuer.Keys : null;

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
