using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Broker.Testing;

/// <summary>
/// A SPIFFE trust domain (or OIDC issuer) for tests: EC P-256 signing keys generated at run
/// time, its JWKS (as text or a file in a temporary folder), and JWTs minted with any claims,
/// headers and lifetimes. Tokens are assembled by hand so that tests control every byte.
/// </summary>
public sealed class TestTrustDomain : IDisposable
{
    private readonly List<(string Kid, ECDsa Key)> _keys = [];

    public TestTrustDomain(string name = "example.org", string? keyId = null)
    {
        Name = name;
        Directory = Path.Combine(Path.GetTempPath(), "broker-td-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
        AddKey(keyId ?? "k-" + Guid.NewGuid().ToString("N")[..12]);
    }

    /// <summary>Trust domain name (or any label when used as an OIDC issuer).</summary>
    public string Name { get; }

    /// <summary>Folder JWKS files are written to; deleted on dispose.</summary>
    public string Directory { get; }

    /// <summary>The kid new tokens are signed with (the most recently added key).</summary>
    public string KeyId => _keys[^1].Kid;

    /// <summary>The current signing key (private).</summary>
    public ECDsa Key => _keys[^1].Key;

    /// <summary>The current public key as SubjectPublicKeyInfo PEM (what an HS256 confusion attack signs with).</summary>
    public string PublicKeyPem => Key.ExportSubjectPublicKeyInfoPem();

    /// <summary><c>spiffe://{Name}{path}</c>.</summary>
    public string SpiffeId(string path = "/agents/planner") => $"spiffe://{Name}{path}";

    /// <summary>Adds a key (rotation) and signs with it from now on.</summary>
    public void AddKey(string keyId) => _keys.Add((keyId, ECDsa.Create(ECCurve.NamedCurves.nistP256)));

    /// <summary>Drops a key from the JWKS (signing with it stays possible until another is current).</summary>
    public void RemoveKey(string keyId) => _keys.RemoveAll(k => k.Kid == keyId);

    /// <summary>The public JWK of the current key.</summary>
    public JsonObject PublicJwk(string? use = "jwt-svid") => Jwk(_keys[^1].Kid, _keys[^1].Key, use);

    /// <summary>The JWKS with every key's public part. <paramref name="use"/> null leaves <c>use</c> out (OIDC style).</summary>
    public string JwksJson(string? use = "jwt-svid")
    {
        var keys = new JsonArray();
        foreach (var (kid, key) in _keys)
        {
            keys.Add(Jwk(kid, key, use));
        }

        return new JsonObject { ["keys"] = keys }.ToJsonString();
    }

    /// <summary>Writes <see cref="JwksJson"/> to a file in <see cref="Directory"/> and returns its absolute path.</summary>
    public string WriteJwksFile(string fileName = "jwks.json", string? use = "jwt-svid")
    {
        var path = Path.Combine(Directory, fileName);
        File.WriteAllText(path, JwksJson(use));
        return path;
    }

    /// <summary>
    /// A JWT-SVID: header <c>{alg: ES256, kid, typ: JWT}</c>, claims <c>sub, aud, iat, exp</c>
    /// (iat = <paramref name="now"/>, exp = now + lifetime, default 5 minutes), then the edits.
    /// </summary>
    public string MintSvid(string subject, string audience, DateTimeOffset now, TimeSpan? lifetime = null, Action<JsonObject>? claims = null, Action<JsonObject>? header = null)
    {
        var payload = new JsonObject
        {
            ["sub"] = subject,
            ["aud"] = audience,
            ["iat"] = now.ToUnixTimeSeconds(),
            ["exp"] = (now + (lifetime ?? TimeSpan.FromMinutes(5))).ToUnixTimeSeconds(),
        };
        claims?.Invoke(payload);
        var head = new JsonObject { ["alg"] = "ES256", ["kid"] = KeyId, ["typ"] = "JWT" };
        header?.Invoke(head);
        return Sign(head, payload);
    }

    /// <summary>An OIDC workload token from <paramref name="issuer"/> (Kubernetes-like header: alg and kid only).</summary>
    public string MintOidc(string issuer, string subject, string audience, DateTimeOffset now, TimeSpan? lifetime = null, Action<JsonObject>? claims = null, Action<JsonObject>? header = null)
    {
        var payload = new JsonObject
        {
            ["iss"] = issuer,
            ["sub"] = subject,
            ["aud"] = new JsonArray(audience),
            ["iat"] = now.ToUnixTimeSeconds(),
            ["nbf"] = now.ToUnixTimeSeconds(),
            ["exp"] = (now + (lifetime ?? TimeSpan.FromMinutes(10))).ToUnixTimeSeconds(),
        };
        claims?.Invoke(payload);
        var head = new JsonObject { ["alg"] = "ES256", ["kid"] = KeyId };
        header?.Invoke(head);
        return Sign(head, payload);
    }

    /// <summary>Signs header and payload (ES256 with the current key).</summary>
    public string Sign(JsonObject header, JsonObject payload) => SignCompact(header.ToJsonString(), payload.ToJsonString());

    /// <summary>Signs exactly this header and payload text (ES256), e.g. JSON with duplicate members.</summary>
    public string SignCompact(string headerJson, string payloadJson) => SignSegments(Encode(headerJson), Encode(payloadJson));

    /// <summary>Signs already-encoded segments (ES256, raw r||s as JWS requires).</summary>
    public string SignSegments(string headerSegment, string payloadSegment)
    {
        var input = headerSegment + "." + payloadSegment;
        var signature = Key.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return input + "." + Base64Url.EncodeToString(signature);
    }

    public void Dispose()
    {
        foreach (var (_, key) in _keys)
        {
            key.Dispose();
        }

        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // Left for the OS temp cleaner.
        }
    }

    /// <summary>base64url (no padding) of UTF-8 text.</summary>
    public static string Encode(string text) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(text));

    private static JsonObject Jwk(string kid, ECDsa key, string? use)
    {
        var p = key.ExportParameters(false);
        var jwk = new JsonObject
        {
            ["kty"] = "EC",
            ["crv"] = "P-256",
            ["x"] = Base64Url.EncodeToString(p.Q.X),
            ["y"] = Base64Url.EncodeToString(p.Q.Y),
            ["kid"] = kid,
            ["alg"] = "ES256",
        };
        if (use is not null)
        {
            jwk["use"] = use;
        }

        return jwk;
    }
}
