using System.Security.Cryptography;
using Broker.Cli.Internal;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Cli.Operators;

/// <summary>
/// A private key that signs operator tokens: EC P-256 (ES256) or RSA of 2048 bits or more
/// (RS256), the keys a broker's <c>Broker:Operators:KeyFile</c> accepts. Its <c>kid</c> is the
/// RFC 7638 thumbprint of the public half, so the token and the JWKS agree without configuration.
/// </summary>
internal sealed class OperatorSigningKey : IDisposable
{
    public const int MinRsaBits = 2048;

    private OperatorSigningKey(AsymmetricAlgorithm key, JsonWebKey publicJwk)
    {
        Key = key;
        PublicJwk = publicJwk;
    }

    public AsymmetricAlgorithm Key { get; }

    /// <summary>The public half with <c>kid</c>, <c>use</c> and <c>alg</c>: one entry of the JWKS a broker trusts.</summary>
    public JsonWebKey PublicJwk { get; }

    public string KeyId => PublicJwk.Kid;

    public string Algorithm => PublicJwk.Alg;

    /// <summary>A new EC P-256 key.</summary>
    public static OperatorSigningKey Generate() => From(ECDsa.Create(ECCurve.NamedCurves.nistP256));

    /// <summary>Loads a PEM private key (PKCS#8, SEC1 or PKCS#1) of a kind operator tokens may be signed with.</summary>
    public static OperatorSigningKey Load(string path)
    {
        var pem = CompactJwsWriter.ReadPem(path, "operator key");
        if (pem.Contains("PUBLIC KEY-----", StringComparison.Ordinal) && !pem.Contains("PRIVATE KEY-----", StringComparison.Ordinal))
        {
            throw CliException.Local($"'{path}' is a public key; signing operator tokens needs the private key (brokerctl operator-key generate writes both).");
        }

        var ec = ECDsa.Create();
        try
        {
            ec.ImportFromPem(pem);
            return From(ec);
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException)
        {
            ec.Dispose();
        }

        var rsa = RSA.Create();
        try
        {
            rsa.ImportFromPem(pem);
            return From(rsa);
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException)
        {
            rsa.Dispose();
            throw CliException.Local($"'{path}' is not a PEM EC P-256 or RSA private key.");
        }
    }

    private static OperatorSigningKey From(AsymmetricAlgorithm key)
    {
        JsonWebKey jwk;
        string algorithm;
        switch (key)
        {
            case ECDsa ec when ec.KeySize == 256:
                using (var publicOnly = ECDsa.Create(ec.ExportParameters(includePrivateParameters: false)))
                {
                    jwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(new ECDsaSecurityKey(publicOnly));
                }

                algorithm = SecurityAlgorithms.EcdsaSha256;
                break;
            case RSA rsa when rsa.KeySize >= MinRsaBits:
                jwk = JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(rsa.ExportParameters(includePrivateParameters: false)));
                algorithm = SecurityAlgorithms.RsaSha256;
                break;
            default:
                key.Dispose();
                throw CliException.Local($"operator keys are EC P-256 (ES256) or RSA of at least {MinRsaBits} bits (RS256).");
        }

        jwk.Kid = Base64UrlEncoder.Encode(jwk.ComputeJwkThumbprint());
        jwk.Use = "sig";
        jwk.Alg = algorithm;
        return new OperatorSigningKey(key, jwk);
    }

    /// <summary>Signs header and claims with this key's algorithm.</summary>
    public string Sign(byte[] header, byte[] claims) => Key switch
    {
        ECDsa ec => CompactJwsWriter.SignEs256(ec, header, claims),
        RSA rsa => CompactJwsWriter.SignRs256(rsa, header, claims),
        _ => throw new InvalidOperationException("unreachable: operator keys are EC or RSA"),
    };

    /// <summary>The private key as PKCS#8 PEM.</summary>
    public string ExportPrivatePem() => Key switch
    {
        ECDsa ec => ec.ExportPkcs8PrivateKeyPem(),
        RSA rsa => rsa.ExportPkcs8PrivateKeyPem(),
        _ => throw new InvalidOperationException("unreachable: operator keys are EC or RSA"),
    };

    public void Dispose() => Key.Dispose();
}
