using Broker.Core.Errors;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Core.Issuance;

/// <summary>
/// The public key a sender-constrained token is bound to (<c>cnf.jkt</c>, RFC 9449). The agent
/// does not prove possession here: binding a key it does not hold only makes the token
/// useless to it; resource servers check the DPoP proof on every use.
/// </summary>
internal static class ProofOfPossessionKey
{
    private static readonly string[] PrivateMembers = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

    /// <summary>Returns the RFC 7638 thumbprint (base64url) of a public JWK, or throws POP_KEY_INVALID.</summary>
    public static string Thumbprint(string jwkJson)
    {
        if (jwkJson.Length > IssuanceOptions.MaxPopKeyLength)
        {
            throw Invalid("is too large");
        }

        JsonWebKey jwk;
        try
        {
            jwk = new JsonWebKey(jwkJson);
        }
        catch (ArgumentException)
        {
            throw Invalid("is not a JSON Web Key");
        }

        using (var doc = System.Text.Json.JsonDocument.Parse(jwkJson))
        {
            foreach (var member in PrivateMembers)
            {
                if (doc.RootElement.TryGetProperty(member, out _))
                {
                    throw Invalid("contains private key material");
                }
            }
        }

        var shapeOk = jwk.Kty switch
        {
            "EC" => jwk.Crv is "P-256" or "P-384" or "P-521" && !string.IsNullOrEmpty(jwk.X) && !string.IsNullOrEmpty(jwk.Y),
            "RSA" => !string.IsNullOrEmpty(jwk.N) && !string.IsNullOrEmpty(jwk.E) && Base64UrlEncoder.DecodeBytes(jwk.N).Length >= 256,
            _ => false,
        };
        if (!shapeOk)
        {
            throw Invalid("must be an EC (P-256/384/521) or RSA (2048+ bit) public key");
        }

        return Base64UrlEncoder.Encode(jwk.ComputeJwkThumbprint());
    }

    private static BrokerException Invalid(string why) =>
        BrokerErrors.InvalidArgument(BrokerErrors.PopKeyInvalid, $"pop_public_key_jwk {why}.");
}
