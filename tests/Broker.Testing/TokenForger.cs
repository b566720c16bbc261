using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Broker.Testing;

/// <summary>
/// Hostile proofs, built by hand where a JOSE library would refuse to produce them. Each takes
/// a well-formed token (or a trust domain to sign with) and breaks exactly one thing.
/// </summary>
public static class TokenForger
{
    /// <summary>The token's header, decoded.</summary>
    public static JsonObject HeaderOf(string token) => Decode(token.Split('.')[0]);

    /// <summary>The token's payload, decoded.</summary>
    public static JsonObject PayloadOf(string token) => Decode(token.Split('.')[1]);

    /// <summary>Same claims, <c>alg</c> set to <paramref name="alg"/> (e.g. none, None, NONE), no signature.</summary>
    public static string AlgNone(string token, string alg = "none")
    {
        var header = HeaderOf(token);
        header["alg"] = alg;
        return TestTrustDomain.Encode(header.ToJsonString()) + "." + token.Split('.')[1] + ".";
    }

    /// <summary>
    /// Algorithm confusion: same claims, <c>alg: HS256</c>, MAC keyed with the verifier's public
    /// key bytes (e.g. <see cref="TestTrustDomain.PublicKeyPem"/>), hoping it is used as a secret.
    /// </summary>
    public static string Hs256WithPublicKey(string token, byte[] publicKeyBytes)
    {
        var header = HeaderOf(token);
        header["alg"] = "HS256";
        var input = TestTrustDomain.Encode(header.ToJsonString()) + "." + token.Split('.')[1];
        var mac = HMACSHA256.HashData(publicKeyBytes, Encoding.ASCII.GetBytes(input));
        return input + "." + Base64Url.EncodeToString(mac);
    }

    /// <summary>
    /// Signed by <paramref name="attacker"/>, whose public key rides in an embedded <c>jwk</c>
    /// header (and whose kid mimics <paramref name="victimKid"/>), hoping the verifier trusts it.
    /// </summary>
    public static string EmbeddedJwk(TestTrustDomain attacker, string victimKid, string subject, string audience, DateTimeOffset now) =>
        attacker.MintSvid(subject, audience, now, header: h =>
        {
            h["kid"] = victimKid;
            h["jwk"] = attacker.PublicJwk(use: null);
        });

    /// <summary>The signature replaced by zeros of the same length (r = s = 0 for ECDSA).</summary>
    public static string ZeroSignature(string token)
    {
        var parts = token.Split('.');
        var length = Base64Url.DecodeFromChars(parts[2]).Length;
        return parts[0] + "." + parts[1] + "." + Base64Url.EncodeToString(new byte[length]);
    }

    /// <summary>The same JWS in flattened JSON serialization (RFC 7515 §7.2.2).</summary>
    public static string JsonSerialization(string token)
    {
        var parts = token.Split('.');
        return new JsonObject { ["payload"] = parts[1], ["protected"] = parts[0], ["signature"] = parts[2] }.ToJsonString();
    }

    /// <summary>A signed JWT whose payload is another JWT (<c>cty: JWT</c>), the nested form of RFC 7519 §5.2.</summary>
    public static string Nested(TestTrustDomain signer, string innerToken) =>
        signer.SignSegments(
            TestTrustDomain.Encode(new JsonObject { ["alg"] = "ES256", ["kid"] = signer.KeyId, ["typ"] = "JWT", ["cty"] = "JWT" }.ToJsonString()),
            TestTrustDomain.Encode(innerToken));

    /// <summary>A signed JWT whose payload is another JWT, without a <c>cty</c> header.</summary>
    public static string NestedWithoutContentType(TestTrustDomain signer, string innerToken) =>
        signer.SignSegments(
            TestTrustDomain.Encode(new JsonObject { ["alg"] = "ES256", ["kid"] = signer.KeyId, ["typ"] = "JWT" }.ToJsonString()),
            TestTrustDomain.Encode(innerToken));

    /// <summary>A five-segment JWE-shaped token carrying the token as its "ciphertext".</summary>
    public static string FiveSegments(string innerToken)
    {
        var header = TestTrustDomain.Encode("""{"alg":"dir","enc":"A256GCM","cty":"JWT"}""");
        return header + ".." + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(12)) + "." + TestTrustDomain.Encode(innerToken) + "." + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(16));
    }

    /// <summary>A header with a member given twice (e.g. <c>"alg":"ES256","alg":"none"</c>), properly signed.</summary>
    public static string DuplicateHeaderMember(TestTrustDomain signer, string token, string member, string firstJson, string secondJson)
    {
        var header = HeaderOf(token);
        header.Remove(member);
        var json = header.ToJsonString();
        json = json[..^1] + $",\"{member}\":{firstJson},\"{member}\":{secondJson}}}";
        return signer.SignSegments(TestTrustDomain.Encode(json), token.Split('.')[1]);
    }

    /// <summary>A payload with a claim given twice (e.g. two <c>sub</c>), properly signed.</summary>
    public static string DuplicatePayloadMember(TestTrustDomain signer, string token, string member, string firstJson, string secondJson)
    {
        var payload = PayloadOf(token);
        payload.Remove(member);
        var json = payload.ToJsonString();
        json = json[..^1] + $",\"{member}\":{firstJson},\"{member}\":{secondJson}}}";
        return signer.SignSegments(token.Split('.')[0], TestTrustDomain.Encode(json));
    }

    /// <summary>A properly signed token padded with a filler claim to at least <paramref name="minimumBytes"/>.</summary>
    public static string Oversize(TestTrustDomain signer, string subject, string audience, DateTimeOffset now, int minimumBytes) =>
        signer.MintSvid(subject, audience, now, claims: c => c["pad"] = new string('x', minimumBytes));

    private static JsonObject Decode(string segment) =>
        JsonNode.Parse(Base64Url.DecodeFromChars(segment))!.AsObject();
}
