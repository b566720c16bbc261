using System.Text.Json;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Jose;

/// <summary>
/// The public keys a token may be bound to (RFC 7638 thumbprint as <c>cnf.jkt</c>): EC P-256,
/// P-384 or P-521, or RSA of 2048 bits or more, with no private member. One rule for the key an
/// agent names over gRPC and the key in a DPoP proof's header.
/// </summary>
public static class PublicJwk
{
    private static readonly string[] PrivateMembers = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

    /// <summary>Reads <paramref name="json"/> as an acceptable public key; otherwise null with what is wrong with it.</summary>
    public static JsonWebKey? TryRead(string json, out string? problem)
    {
        JsonWebKey jwk;
        try
        {
            jwk = new JsonWebKey(json);
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                problem = "is not a JSON Web Key";
                return null;
            }

            foreach (var member in PrivateMembers)
            {
                if (doc.RootElement.TryGetProperty(member, out _))
                {
                    problem = "contains private key material";
                    return null;
                }
            }
        }
        catch (Exception e) when (e is ArgumentException or JsonException)
        {
            problem = "is not a JSON Web Key";
            return null;
        }

        var shapeOk = jwk.Kty switch
        {
            "EC" => jwk.Crv is "P-256" or "P-384" or "P-521" && !string.IsNullOrEmpty(jwk.X) && !string.IsNullOrEmpty(jwk.Y),
            "RSA" => !string.IsNullOrEmpty(jwk.N) && !string.IsNullOrEmpty(jwk.E) && Base64UrlEncoder.DecodeBytes(jwk.N).Length >= 256,
            _ => false,
        };
        if (!shapeOk)
        {
            problem = "must be an EC (P-256/384/521) or RSA (2048+ bit) public key";
            return null;
        }

        problem = null;
        return jwk;
    }

    /// <summary>The RFC 7638 thumbprint, base64url: the value of <c>cnf.jkt</c>.</summary>
    public static string Thumbprint(JsonWebKey jwk) => Base64UrlEncoder.Encode(jwk.ComputeJwkThumbprint());
}
