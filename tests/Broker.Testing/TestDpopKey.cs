using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Broker.Testing;

/// <summary>
/// An agent's DPoP key (EC P-256, generated at run time) and the proofs it signs (RFC 9449),
/// assembled by hand so a test controls every header member and claim.
/// </summary>
public sealed class TestDpopKey : IDisposable
{
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    /// <summary>The public key as a JWK (kty, crv, x, y).</summary>
    public JsonObject PublicJwk
    {
        get
        {
            var p = _key.ExportParameters(false);
            return new JsonObject { ["crv"] = "P-256", ["kty"] = "EC", ["x"] = Base64Url.EncodeToString(p.Q.X), ["y"] = Base64Url.EncodeToString(p.Q.Y) };
        }
    }

    /// <summary>RFC 7638 thumbprint: the <c>cnf.jkt</c> a token bound to this key carries.</summary>
    public string Thumbprint => Base64Url.EncodeToString(SHA256.HashData(Encoding.UTF8.GetBytes(PublicJwk.ToJsonString())));

    /// <summary>A proof for <paramref name="method"/> <paramref name="uri"/>; <paramref name="change"/> edits header and payload before signing.</summary>
    public string Proof(string method, string uri, string? nonce = null, string? accessToken = null, DateTimeOffset? issuedAt = null, Action<JsonObject, JsonObject>? change = null)
    {
        var header = new JsonObject { ["typ"] = "dpop+jwt", ["alg"] = "ES256", ["jwk"] = PublicJwk };
        var payload = new JsonObject
        {
            ["jti"] = Guid.NewGuid().ToString("N"),
            ["htm"] = method,
            ["htu"] = uri,
            ["iat"] = (issuedAt ?? DateTimeOffset.UtcNow).ToUnixTimeSeconds(),
        };
        if (nonce is not null)
        {
            payload["nonce"] = nonce;
        }

        if (accessToken is not null)
        {
            payload["ath"] = Base64Url.EncodeToString(SHA256.HashData(Encoding.ASCII.GetBytes(accessToken)));
        }

        change?.Invoke(header, payload);
        var signingInput = TestTrustDomain.Encode(header.ToJsonString()) + "." + TestTrustDomain.Encode(payload.ToJsonString());
        return signingInput + "." + Base64Url.EncodeToString(_key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256));
    }

    public void Dispose() => _key.Dispose();
}
