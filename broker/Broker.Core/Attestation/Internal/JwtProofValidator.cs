using System.Text.Json;
using Broker.Core.Errors;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Core.Attestation.Internal;

/// <summary>
/// What JWT-SVIDs and OIDC tokens share once their trust source is known: finding the key,
/// verifying the signature with the library (signature only), and checking audience and
/// lifetime ourselves against the injected clock with our own skew.
/// </summary>
internal sealed class JwtProofValidator
{
    /// <summary>Longest accepted <c>jti</c> (it becomes part of a replay-store key).</summary>
    public const int MaxJwtIdLength = 256;

    private readonly AttestationOptions _options;
    private readonly TimeProvider _time;
    private readonly JsonWebTokenHandler _handler;

    public JwtProofValidator(AttestationOptions options, TimeProvider time)
    {
        _options = options;
        _time = time;
        _handler = new JsonWebTokenHandler { MaximumTokenSizeInBytes = options.MaxProofBytes, MapInboundClaims = false };
    }

    /// <summary>
    /// The library checks the signature and nothing else: issuer, audience and lifetime are
    /// ours (explicit skew, injected clock, exactly one audience), and the one key it may use
    /// is the one we found by kid, so it never tries other keys.
    /// </summary>
    public TokenValidationParameters ParametersFor(SecurityKey key)
    {
        var parameters = Broker.Jose.SignatureOnlyValidation.For(key, JwsPreflight.Algorithms, requireExpiration: true);
        parameters.TryAllIssuerSigningKeys = false;
        parameters.ClockSkew = _options.ClockSkew;
        return parameters;
    }

    /// <summary>Finds the proof's key; an unknown kid may trigger one bounded early refresh.</summary>
    public async ValueTask<VerificationKey> FindKeyAsync(JwsParts parts, RefreshingBundle<KeySet> bundle, CancellationToken cancellationToken)
    {
        var keys = await bundle.GetAsync(cancellationToken);
        var key = keys.Find(parts.KeyId);
        if (key is null)
        {
            var refreshed = await bundle.TryRefreshEarlyAsync(cancellationToken);
            key = refreshed?.Find(parts.KeyId);
        }

        return key ?? throw BrokerErrors.Attestation(BrokerErrors.AttestationKeyUnknown, "attestation proof does not name a known signing key");
    }

    public async ValueTask VerifySignatureAsync(string token, JwsParts parts, VerificationKey key)
    {
        if (!key.Accepts(parts.Algorithm))
        {
            throw SignatureInvalid();
        }

        var result = await _handler.ValidateTokenAsync(token, key.Parameters);
        if (!result.IsValid)
        {
            throw result.Exception switch
            {
                SecurityTokenSignatureKeyNotFoundException => BrokerErrors.Attestation(BrokerErrors.AttestationKeyUnknown, "attestation proof does not name a known signing key"),
                SecurityTokenInvalidAlgorithmException => BrokerErrors.Attestation(BrokerErrors.AttestationAlgorithmNotAllowed, "attestation proof uses an algorithm that is not allowed"),
                SecurityTokenMalformedException => BrokerErrors.Attestation(BrokerErrors.AttestationMalformed, "attestation proof is not a well-formed JWT"),

                // Invalid signatures, and anything else the library refuses: the proof is not
                // shown to come from the key. No library text reaches the caller.
                _ => SignatureInvalid(),
            };
        }
    }

    /// <summary>
    /// Reads aud, exp, nbf and iat for shape only (before the signature is checked), so a
    /// wrongly typed claim is reported as malformed rather than tripping the library.
    /// </summary>
    public static ProofClaims ReadClaims(JsonElement payload) => new(
        ReadAudiences(payload),
        ReadNumericDate(payload, "exp"),
        ReadNumericDate(payload, "nbf"),
        ReadNumericDate(payload, "iat"));

    /// <summary>Audience, expiry, not-before, issued-at and lifetime against the injected clock; returns exp.</summary>
    public DateTimeOffset CheckClaims(ProofClaims claims)
    {
        CheckAudience(claims.Audiences);

        var now = _time.GetUtcNow();
        var skew = _options.ClockSkew;
        var exp = claims.Expires
            ?? throw BrokerErrors.Attestation(BrokerErrors.AttestationClaimMissing, "attestation proof has no 'exp' claim");

        // Boundaries: valid while now < exp + skew; nbf and iat may be at most skew ahead of now.
        if (now >= exp + skew)
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationExpired, "attestation proof has expired");
        }

        if (claims.NotBefore > now + skew)
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationNotYetValid, "attestation proof is not valid yet");
        }

        if (claims.IssuedAt > now + skew)
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationNotYetValid, "attestation proof was issued in the future");
        }

        var lifetime = exp - (claims.IssuedAt ?? now);
        if (lifetime > _options.MaxProofLifetime)
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationLifetimeTooLong, $"attestation proof lives longer than {_options.MaxProofLifetime.TotalSeconds:0} seconds");
        }

        return exp;
    }

    /// <summary>The <c>jti</c> when the trust source makes proofs single-use; otherwise null.</summary>
    public static string? ReadJwtId(JsonElement payload, bool singleUse)
    {
        if (!singleUse)
        {
            return null;
        }

        if (!payload.TryGetProperty("jti", out var jti) || jti.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(jti.GetString()))
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationClaimMissing, "attestation proof has no 'jti' claim; this trust source accepts each proof once");
        }

        var value = jti.GetString()!;
        if (value.Length > MaxJwtIdLength || value.Any(char.IsControl))
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationMalformed, "attestation proof 'jti' claim is not acceptable");
        }

        return value;
    }

    /// <summary>A string claim, or null when absent; any other JSON type is malformed.</summary>
    public static string? ReadString(JsonElement payload, string name)
    {
        if (!payload.TryGetProperty(name, out var value))
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : throw BrokerErrors.Attestation(BrokerErrors.AttestationMalformed, $"attestation proof '{name}' claim is not a string");
    }

    /// <summary>The audiences as strings; null when the claim is absent.</summary>
    private static IReadOnlyList<string>? ReadAudiences(JsonElement payload)
    {
        if (!payload.TryGetProperty("aud", out var aud))
        {
            return null;
        }

        switch (aud.ValueKind)
        {
            case JsonValueKind.String:
                return [aud.GetString()!];
            case JsonValueKind.Array when aud.EnumerateArray().All(a => a.ValueKind == JsonValueKind.String):
                return aud.EnumerateArray().Select(a => a.GetString()!).ToArray();
            default:
                throw BrokerErrors.Attestation(BrokerErrors.AttestationMalformed, "attestation proof 'aud' claim is not a string or array of strings");
        }
    }

    /// <summary>Exactly one audience, equal to ours. SPIFFE recommends single-audience JWT-SVIDs: a proof addressed to several parties can be replayed by any of them.</summary>
    private void CheckAudience(IReadOnlyList<string>? audiences)
    {
        if (audiences is null)
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationClaimMissing, "attestation proof has no 'aud' claim");
        }

        if (audiences.Count != 1 || !string.Equals(audiences[0], _options.Audience, StringComparison.Ordinal))
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationAudienceMismatch, "attestation proof must name exactly one audience, this broker's");
        }
    }

    private static readonly DateTimeOffset MaxNumericDate = DateTimeOffset.FromUnixTimeSeconds(253402300799);

    private static DateTimeOffset? ReadNumericDate(JsonElement payload, string name)
    {
        if (!payload.TryGetProperty(name, out var value))
        {
            return null;
        }

        if (value.ValueKind == JsonValueKind.Number)
        {
            if (value.TryGetInt64(out var seconds) && seconds >= 0 && seconds <= 253402300799)
            {
                return DateTimeOffset.FromUnixTimeSeconds(seconds);
            }

            // RFC 7519 NumericDate may carry fractions of a second.
            if (value.TryGetDouble(out var fractional) && double.IsFinite(fractional) && fractional >= 0 && fractional <= 253402300799)
            {
                return DateTimeOffset.UnixEpoch.AddTicks((long)(fractional * TimeSpan.TicksPerSecond)) is var date && date <= MaxNumericDate ? date : MaxNumericDate;
            }
        }

        throw BrokerErrors.Attestation(BrokerErrors.AttestationMalformed, $"attestation proof '{name}' claim is not a valid time");
    }

    private static BrokerException SignatureInvalid() =>
        BrokerErrors.Attestation(BrokerErrors.AttestationSignatureInvalid, "attestation proof signature does not verify");
}

/// <summary>The time and audience claims of a proof, read for shape before its signature is checked.</summary>
internal sealed record ProofClaims(IReadOnlyList<string>? Audiences, DateTimeOffset? Expires, DateTimeOffset? NotBefore, DateTimeOffset? IssuedAt);
