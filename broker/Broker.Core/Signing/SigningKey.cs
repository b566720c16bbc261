using System.Security.Cryptography;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Core.Signing;

/// <summary>
/// One token-signing key and the moment it starts signing. Only EC keys (P-256 → ES256,
/// P-384 → ES384): RSA signing costs ~20× more on the issuance path.
/// </summary>
public sealed class SigningKey
{
    private SigningKey(ECDsa key, DateTimeOffset notBefore)
    {
        var parameters = key.ExportParameters(includePrivateParameters: false);
        Algorithm = parameters.Curve.Oid.FriendlyName switch
        {
            "nistP256" or "ECDSA_P256" => SecurityAlgorithms.EcdsaSha256,
            "nistP384" or "ECDSA_P384" => SecurityAlgorithms.EcdsaSha384,
            var other => throw new ArgumentException($"Signing keys must be EC P-256 or P-384, not {other}."),
        };

        var securityKey = new ECDsaSecurityKey(key);
        var publicJwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(new ECDsaSecurityKey(ECDsa.Create(parameters)));
        KeyId = Base64UrlEncoder.Encode(publicJwk.ComputeJwkThumbprint());
        securityKey.KeyId = KeyId;
        publicJwk.KeyId = KeyId;
        publicJwk.Use = "sig";
        publicJwk.Alg = Algorithm;
        PublicJwk = publicJwk;
        NotBefore = notBefore;
        Credentials = new SigningCredentials(securityKey, Algorithm);
    }

    /// <summary>RFC 7638 thumbprint of the public key, used as <c>kid</c>.</summary>
    public string KeyId { get; }

    public string Algorithm { get; }

    public DateTimeOffset NotBefore { get; }

    public JsonWebKey PublicJwk { get; }

    public SigningCredentials Credentials { get; }

    /// <summary>
    /// A secret for <paramref name="purpose"/> derived from this key's private scalar (HKDF-SHA256):
    /// every node holding the key derives the same secret, and nothing derived reveals the key.
    /// </summary>
    public byte[] DeriveSecret(string purpose)
    {
        var d = ((ECDsaSecurityKey)Credentials.Key).ECDsa.ExportParameters(includePrivateParameters: true).D!;
        try
        {
            return HKDF.DeriveKey(HashAlgorithmName.SHA256, d, 32, salt: null, info: System.Text.Encoding.ASCII.GetBytes("broker " + purpose));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(d);
        }
    }

    public static SigningKey Create(ECDsa key, DateTimeOffset notBefore) => new(key, notBefore);

    public static SigningKey Generate(DateTimeOffset notBefore) => new(ECDsa.Create(ECCurve.NamedCurves.nistP256), notBefore);

    /// <summary>Loads a PEM EC private key (PKCS#8 or SEC1).</summary>
    public static SigningKey FromPemFile(string path, DateTimeOffset notBefore)
    {
        var ecdsa = ECDsa.Create();
        ecdsa.ImportFromPem(File.ReadAllText(path));
        return new SigningKey(ecdsa, notBefore);
    }
}
