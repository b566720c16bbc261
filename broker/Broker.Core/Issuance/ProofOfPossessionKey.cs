using Broker.Core.Errors;
using Broker.Jose;

namespace Broker.Core.Issuance;

/// <summary>
/// The public key a sender-constrained token is bound to (<c>cnf.jkt</c>, RFC 9449). The agent
/// does not prove possession here: binding a key it does not hold only makes the token
/// useless to it; resource servers check the DPoP proof on every use.
/// </summary>
internal static class ProofOfPossessionKey
{
    /// <summary>Returns the RFC 7638 thumbprint (base64url) of a public JWK, or throws POP_KEY_INVALID.</summary>
    public static string Thumbprint(string jwkJson)
    {
        if (jwkJson.Length > IssuanceOptions.MaxPopKeyLength)
        {
            throw Invalid("is too large");
        }

        return PublicJwk.TryRead(jwkJson, out var problem) is { } jwk ? PublicJwk.Thumbprint(jwk) : throw Invalid(problem!);
    }

    private static BrokerException Invalid(string why) =>
        BrokerErrors.InvalidArgument(BrokerErrors.PopKeyInvalid, $"pop_public_key_jwk {why}.");
}
