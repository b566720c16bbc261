using System.Buffers.Text;
using System.Numerics;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Core.Attestation.Internal;

/// <summary>A verified public signing key from a bundle, with the validation parameters built once for it.</summary>
internal sealed class VerificationKey
{
    public VerificationKey(string keyId, SecurityKey key, string keyType, string? curve, string? algorithm, TokenValidationParameters parameters)
    {
        KeyId = keyId;
        Key = key;
        KeyType = keyType;
        Curve = curve;
        Algorithm = algorithm;
        Parameters = parameters;
    }

    public string KeyId { get; }

    public SecurityKey Key { get; }

    public string KeyType { get; }

    public string? Curve { get; }

    /// <summary>The JWK's own <c>alg</c>, when it pins one.</summary>
    public string? Algorithm { get; }

    public TokenValidationParameters Parameters { get; }

    /// <summary>Whether a proof signed with <paramref name="alg"/> can be verified by this key at all.</summary>
    public bool Accepts(string alg)
    {
        if (Algorithm is not null && !string.Equals(Algorithm, alg, StringComparison.Ordinal))
        {
            return false;
        }

        return alg switch
        {
            "ES256" => Curve == "P-256",
            "ES384" => Curve == "P-384",
            "ES512" => Curve == "P-521",
            _ => KeyType == "RSA",
        };
    }
}

/// <summary>The usable keys of one JWKS, by kid. Ambiguous kids (listed twice) are left out.</summary>
internal sealed class KeySet
{
    private readonly Dictionary<string, VerificationKey> _keys;

    public KeySet(Dictionary<string, VerificationKey> keys) => _keys = keys;

    public int Count => _keys.Count;

    public VerificationKey? Find(string kid) => _keys.GetValueOrDefault(kid);
}

/// <summary>Which JWKS <c>use</c> values name a JWT signing key.</summary>
internal enum JwksKind
{
    /// <summary>SPIFFE bundle: <c>jwt-svid</c> (or absent/<c>sig</c> in hand-written files); <c>x509-svid</c> keys are CA keys and ignored.</summary>
    SpiffeJwt,

    /// <summary>OIDC issuer keys: absent or <c>sig</c>.</summary>
    Oidc,
}

/// <summary>
/// Turns a JWKS document into verified public keys. Only EC (P-256/384/521) and RSA (2048 bits
/// and up) public parts are imported: symmetric keys, private parts and unknown key types are
/// skipped, so a mistaken bundle can never make a secret or a weak key acceptable.
/// </summary>
internal static class JwksParser
{
    public const int MaxKeys = 256;
    private const int MinRsaBits = 2048;
    private const int MaxRsaBits = 16384;

    public static KeySet Parse(byte[] json, JwksKind kind, Func<SecurityKey, TokenValidationParameters> parametersFor)
    {
        using var document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 });
        if (document.RootElement.ValueKind != JsonValueKind.Object
            || !document.RootElement.TryGetProperty("keys", out var keys)
            || keys.ValueKind != JsonValueKind.Array)
        {
            throw new InvalidDataException("not a JWKS: no 'keys' array");
        }

        if (keys.GetArrayLength() > MaxKeys)
        {
            throw new InvalidDataException($"JWKS has more than {MaxKeys} keys");
        }

        var result = new Dictionary<string, VerificationKey>(StringComparer.Ordinal);
        var ambiguous = new HashSet<string>(StringComparer.Ordinal);
        foreach (var jwk in keys.EnumerateArray())
        {
            var key = TryImport(jwk, kind, parametersFor);
            if (key is null)
            {
                continue;
            }

            if (!result.TryAdd(key.KeyId, key))
            {
                ambiguous.Add(key.KeyId);
            }
        }

        foreach (var kid in ambiguous)
        {
            result.Remove(kid);
        }

        return new KeySet(result);
    }

    private static VerificationKey? TryImport(JsonElement jwk, JwksKind kind, Func<SecurityKey, TokenValidationParameters> parametersFor)
    {
        if (jwk.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        var kid = GetString(jwk, "kid");
        var kty = GetString(jwk, "kty");
        var use = GetString(jwk, "use");
        var alg = GetString(jwk, "alg");
        if (!JwsPreflight.IsAcceptableKeyId(kid) || !IsSigningUse(use, kind))
        {
            return null;
        }

        if (alg is not null && !JwsPreflight.Algorithms.Contains(alg))
        {
            return null;
        }

        try
        {
            switch (kty)
            {
                case "EC":
                {
                    var crv = GetString(jwk, "crv");
                    var (curve, size) = crv switch
                    {
                        "P-256" => (ECCurve.NamedCurves.nistP256, 32),
                        "P-384" => (ECCurve.NamedCurves.nistP384, 48),
                        "P-521" => (ECCurve.NamedCurves.nistP521, 66),
                        _ => (default(ECCurve), 0),
                    };
                    var x = Decode(jwk, "x");
                    var y = Decode(jwk, "y");
                    if (size == 0 || x?.Length != size || y?.Length != size)
                    {
                        return null;
                    }

                    // ImportParameters checks the point is on the curve (invalid-curve attacks).
                    var ecdsa = ECDsa.Create(new ECParameters { Curve = curve, Q = new ECPoint { X = x, Y = y } });
                    var securityKey = new ECDsaSecurityKey(ecdsa) { KeyId = kid };
                    return new VerificationKey(kid, securityKey, "EC", crv, alg, parametersFor(securityKey));
                }

                case "RSA":
                {
                    var n = Decode(jwk, "n");
                    var e = Decode(jwk, "e");
                    if (n is null || e is null || e.Length is 0 or > 8)
                    {
                        return null;
                    }

                    var bits = (int)new BigInteger(n, isUnsigned: true, isBigEndian: true).GetBitLength();
                    if (bits is < MinRsaBits or > MaxRsaBits)
                    {
                        return null;
                    }

                    var rsa = RSA.Create();
                    rsa.ImportParameters(new RSAParameters { Modulus = n, Exponent = e });
                    var securityKey = new RsaSecurityKey(rsa) { KeyId = kid };
                    return new VerificationKey(kid, securityKey, "RSA", null, alg, parametersFor(securityKey));
                }

                default:
                    // "oct" (a shared secret in a public bundle), OKP and anything else.
                    return null;
            }
        }
        catch (CryptographicException)
        {
            return null;
        }
    }

    private static bool IsSigningUse(string? use, JwksKind kind) => kind switch
    {
        JwksKind.SpiffeJwt => use is null or "jwt-svid" or "sig",
        _ => use is null or "sig",
    };

    private static string? GetString(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static byte[]? Decode(JsonElement element, string name)
    {
        var text = GetString(element, name);
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        try
        {
            return Base64Url.DecodeFromChars(text);
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
