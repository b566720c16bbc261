using System.Text.Json;
using Broker.Core.Errors;
using Broker.Jose;

namespace Broker.Core.Attestation.Internal;

/// <summary>Which header set a proof may carry.</summary>
internal enum JwsProfile
{
    /// <summary>SPIFFE JWT-SVID: only alg, kid, typ.</summary>
    JwtSvid,

    /// <summary>OIDC workload token: as JWT-SVID, plus the x5t thumbprints some CI issuers add (informational, never used to find a key).</summary>
    Oidc,

    /// <summary>Security Event Token (RFC 8417): alg, kid, and typ, which must be <c>secevent+jwt</c>.</summary>
    SecurityEvent,
}

/// <summary>A compact JWS that passed pre-flight: its protected header facts and its payload.</summary>
internal sealed record JwsParts(string Algorithm, string KeyId, JsonElement Payload);

/// <summary>
/// Strict checks over the raw compact JWS before any library parses it. The library is
/// lenient in ways an attacker can use (JSON serialization, nested JWTs, key-bearing headers,
/// duplicate keys where the last one wins); everything here fails closed with a reason code.
/// </summary>
internal static class JwsPreflight
{
    /// <summary>Longest accepted <c>kid</c>.</summary>
    public const int MaxKeyIdLength = 128;

    private static readonly HashSet<string> AllowedAlgorithms = new(StringComparer.Ordinal)
    {
        "RS256", "RS384", "RS512",
        "ES256", "ES384", "ES512",
        "PS256", "PS384", "PS512",
    };

    public static IReadOnlyCollection<string> Algorithms => AllowedAlgorithms;

    /// <summary>Size check alone, so the proof cache never hashes an oversized input.</summary>
    public static void CheckSize(string? token, int maxBytes, JwsProfile profile = JwsProfile.JwtSvid)
    {
        if (string.IsNullOrEmpty(token))
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationMissing, $"no {Noun(profile)} was presented");
        }

        // Every accepted character is ASCII (checked below), so characters == bytes; a
        // non-ASCII character only makes the real byte count larger.
        if (token.Length > maxBytes)
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationTooLarge, $"{Noun(profile)} is larger than {maxBytes} bytes");
        }
    }

    /// <summary>What the refusal messages call the token.</summary>
    public static string Noun(JwsProfile profile) => profile == JwsProfile.SecurityEvent ? "security event token" : "attestation proof";

    public static JwsParts Check(string? token, int maxBytes, JwsProfile profile)
    {
        CheckSize(token, maxBytes, profile);
        var noun = Noun(profile);

        // JWS JSON serialization, whitespace, anything outside the base64url alphabet, or a
        // five-segment JWE: only compact serialization is accepted (CompactJws).
        var (headerRange, payloadRange, signatureRange) = Shared(() => CompactJws.Split(token!, noun));
        var headerSegment = token.AsSpan(headerRange);
        var payloadSegment = token.AsSpan(payloadRange);
        var signatureSegment = token.AsSpan(signatureRange);

        var header = ReadObject(headerSegment, noun + " header");
        var alg = CheckHeader(header, profile, out var kid);

        // Checked after alg so that an unsigned "alg: none" token is reported as such.
        if (signatureSegment.IsEmpty || !CompactJws.IsCanonicalBase64Url(signatureSegment))
        {
            throw Malformed($"{noun} has no valid signature segment");
        }

        // A payload that is not a JSON object (e.g. a nested compact JWT) is refused here.
        var payload = ReadObject(payloadSegment, noun + " payload");
        return new JwsParts(alg, kid, payload);
    }

    private static string CheckHeader(JsonElement header, JwsProfile profile, out string kid)
    {
        var noun = Noun(profile);
        if (!header.TryGetProperty("alg", out var algElement) || algElement.ValueKind != JsonValueKind.String)
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationAlgorithmNotAllowed, $"{noun} names no signing algorithm");
        }

        // Exact, case-sensitive: "none", "None", "NONE", HS256 and friends are all refused.
        var alg = algElement.GetString()!;
        if (!AllowedAlgorithms.Contains(alg))
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationAlgorithmNotAllowed, $"{noun} uses an algorithm that is not allowed (RS, ES or PS 256/384/512 only)");
        }

        string? keyId = null;
        var sawSetType = false;
        foreach (var property in header.EnumerateObject())
        {
            switch (property.Name)
            {
                case "alg":
                    break;
                case "kid":
                    keyId = property.Value.ValueKind == JsonValueKind.String
                        ? property.Value.GetString()
                        : throw Malformed($"{noun} 'kid' header is not a string");
                    break;
                case "typ" when profile == JwsProfile.SecurityEvent:
                    // RFC 8417 section 2.3: explicit typing keeps a SET from being taken for an
                    // access or ID token, and any other JWT from being taken for a SET.
                    if (property.Value.ValueKind != JsonValueKind.String || property.Value.GetString() is not ("secevent+jwt" or "application/secevent+jwt"))
                    {
                        throw HeaderNotAllowed(profile);
                    }

                    sawSetType = true;
                    break;
                case "typ":
                    // JWT-SVID: typ, when present, is JWT or JOSE. An at+jwt (a Broker token
                    // presented back as proof) or any other type is refused.
                    if (property.Value.ValueKind != JsonValueKind.String || property.Value.GetString() is not ("JWT" or "JOSE"))
                    {
                        throw HeaderNotAllowed(profile);
                    }

                    break;
                case "x5t" or "x5t#S256" when profile == JwsProfile.Oidc && property.Value.ValueKind == JsonValueKind.String:
                    // GitHub Actions tokens carry x5t next to kid; keys are only ever found by kid.
                    break;
                default:
                    // jwk, jku, x5u, x5c (key-bearing or fetch-inducing: never honoured),
                    // crit (extensions we do not implement), cty (nested JWT), zip, enc, b64...
                    throw HeaderNotAllowed(profile);
            }
        }

        if (profile == JwsProfile.SecurityEvent && !sawSetType)
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationHeaderNotAllowed, $"{noun} must carry typ secevent+jwt (RFC 8417)");
        }

        if (!IsAcceptableKeyId(keyId))
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationKeyUnknown, $"{noun} does not name a known signing key");
        }

        kid = keyId;
        return alg;
    }

    /// <summary>A kid is an opaque label; path-like or control characters are refused before any lookup.</summary>
    public static bool IsAcceptableKeyId([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] string? kid)
    {
        if (string.IsNullOrEmpty(kid) || kid.Length > MaxKeyIdLength)
        {
            return false;
        }

        if (kid.Contains("..", StringComparison.Ordinal))
        {
            return false;
        }

        foreach (var c in kid)
        {
            if (c is '/' or '\\' || char.IsControl(c))
            {
                return false;
            }
        }

        return true;
    }

    private static JsonElement ReadObject(ReadOnlySpan<char> segment, string what)
    {
        try
        {
            return CompactJws.ReadObject(segment, what);
        }
        catch (JoseFormatException e)
        {
            throw Malformed(e.Message);
        }
    }

    private static T Shared<T>(Func<T> read)
    {
        try
        {
            return read();
        }
        catch (JoseFormatException e)
        {
            throw Malformed(e.Message);
        }
    }

    private static BrokerException Malformed(string message) =>
        BrokerErrors.Attestation(BrokerErrors.AttestationMalformed, message);

    private static BrokerException HeaderNotAllowed(JwsProfile profile) =>
        BrokerErrors.Attestation(BrokerErrors.AttestationHeaderNotAllowed, $"{Noun(profile)} carries a header that is not allowed (only alg, kid and typ{(profile == JwsProfile.SecurityEvent ? " secevent+jwt" : "")})");
}
