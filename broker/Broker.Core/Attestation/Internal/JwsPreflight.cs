using System.Buffers.Text;
using System.Text.Json;
using Broker.Core.Errors;

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

    // Nesting in real tokens is shallow (Kubernetes claims go three deep); this bounds the parser.
    private const int MaxJsonDepth = 16;

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

        // JWS JSON serialization ({"payload":...}), whitespace, or anything outside the
        // base64url alphabet: only compact serialization is accepted.
        var dots = 0;
        foreach (var c in token!)
        {
            if (c == '.')
            {
                dots++;
            }
            else if (!IsBase64UrlChar(c))
            {
                throw Malformed($"{noun} is not a compact JWS");
            }
        }

        // Five segments is a JWE (or an encrypted nested JWT); anything but three is refused.
        if (dots != 2)
        {
            throw Malformed($"{noun} must have exactly three segments");
        }

        var first = token.IndexOf('.');
        var second = token.IndexOf('.', first + 1);
        var headerSegment = token.AsSpan(0, first);
        var payloadSegment = token.AsSpan(first + 1, second - first - 1);
        var signatureSegment = token.AsSpan(second + 1);

        var header = ReadObject(headerSegment, noun + " header");
        var alg = CheckHeader(header, profile, out var kid);

        // Checked after alg so that an unsigned "alg: none" token is reported as such.
        if (signatureSegment.IsEmpty || !IsCanonicalBase64Url(signatureSegment))
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
        if (segment.IsEmpty || !IsCanonicalBase64Url(segment))
        {
            throw Malformed($"{what} is not valid base64url");
        }

        var bytes = new byte[Base64Url.GetMaxDecodedLength(segment.Length)];
        if (!Base64Url.TryDecodeFromChars(segment, bytes, out var written))
        {
            throw Malformed($"{what} is not valid base64url");
        }

        var json = bytes.AsSpan(0, written);

        // The reader checks UTF-8 only lazily, when a string is read: a bad byte in a value
        // would surface later as an InvalidOperationException instead of this refusal.
        if (!System.Text.Unicode.Utf8.IsValid(json))
        {
            throw Malformed($"{what} is not valid UTF-8");
        }

        try
        {
            RejectDuplicateKeys(json, what);
            var reader = new Utf8JsonReader(json, ReaderOptions);
            var element = JsonElement.ParseValue(ref reader);
            if (element.ValueKind != JsonValueKind.Object)
            {
                throw Malformed($"{what} is not a JSON object");
            }

            return element;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // InvalidOperationException: a string that is not valid UTF-8.
            throw Malformed($"{what} is not valid JSON");
        }
    }

    private static readonly JsonReaderOptions ReaderOptions = new()
    {
        MaxDepth = MaxJsonDepth,
        CommentHandling = JsonCommentHandling.Disallow,
        AllowTrailingCommas = false,
    };

    /// <summary>
    /// Duplicate member names are refused at every depth: parsers disagree on which one wins,
    /// so a token could mean one thing to the signer's checks and another to ours.
    /// </summary>
    private static void RejectDuplicateKeys(ReadOnlySpan<byte> json, string what)
    {
        var reader = new Utf8JsonReader(json, ReaderOptions);
        var scopes = new Stack<HashSet<string>?>();
        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.StartObject:
                    scopes.Push(new HashSet<string>(StringComparer.Ordinal));
                    break;
                case JsonTokenType.StartArray:
                    scopes.Push(null);
                    break;
                case JsonTokenType.EndObject:
                case JsonTokenType.EndArray:
                    scopes.Pop();
                    break;
                case JsonTokenType.PropertyName:
                    // GetString unescapes, so "sub" and "\u0073ub" count as the same name.
                    if (!scopes.Peek()!.Add(reader.GetString()!))
                    {
                        throw Malformed($"{what} has a duplicate JSON member");
                    }

                    break;
            }
        }
    }

    private static bool IsBase64UrlChar(char c) =>
        c is >= 'A' and <= 'Z' or >= 'a' and <= 'z' or >= '0' and <= '9' or '-' or '_';

    /// <summary>
    /// Unpadded, and the unused low bits of the last character are zero, so each byte string
    /// has exactly one accepted spelling (no malleable re-encodings of a signed token).
    /// </summary>
    private static bool IsCanonicalBase64Url(ReadOnlySpan<char> segment)
    {
        var remainder = segment.Length % 4;
        if (remainder == 1)
        {
            return false;
        }

        if (remainder == 0)
        {
            return true;
        }

        var last = segment[^1];
        var value = last switch
        {
            >= 'A' and <= 'Z' => last - 'A',
            >= 'a' and <= 'z' => last - 'a' + 26,
            >= '0' and <= '9' => last - '0' + 52,
            '-' => 62,
            _ => 63,
        };
        var unusedBits = remainder == 2 ? 4 : 2;
        return (value & ((1 << unusedBits) - 1)) == 0;
    }

    private static BrokerException Malformed(string message) =>
        BrokerErrors.Attestation(BrokerErrors.AttestationMalformed, message);

    private static BrokerException HeaderNotAllowed(JwsProfile profile) =>
        BrokerErrors.Attestation(BrokerErrors.AttestationHeaderNotAllowed, $"{Noun(profile)} carries a header that is not allowed (only alg, kid and typ{(profile == JwsProfile.SecurityEvent ? " secevent+jwt" : "")})");
}
