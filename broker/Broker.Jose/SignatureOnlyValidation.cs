using Microsoft.IdentityModel.Tokens;

namespace Broker.Jose;

/// <summary>
/// What every Broker JWS check asks of IdentityModel: the signature, by one known key and an
/// allowed algorithm, and nothing else. Issuer, audience, lifetime and replay are decided by the
/// caller's own code (explicit skew, injected clock), so the library never decides them by
/// its defaults.
/// </summary>
public static class SignatureOnlyValidation
{
    /// <param name="key">The one key the signature must verify with.</param>
    /// <param name="algorithms">The allowed <c>alg</c> values.</param>
    /// <param name="requireExpiration">Whether a token without <c>exp</c> is refused by the library too.</param>
    public static TokenValidationParameters For(SecurityKey key, IEnumerable<string> algorithms, bool requireExpiration) => new()
    {
        IssuerSigningKey = key,
        ValidAlgorithms = algorithms,
        RequireSignedTokens = true,
        RequireExpirationTime = requireExpiration,
        ValidateIssuer = false,
        ValidateAudience = false,
        ValidateLifetime = false,
        ValidateIssuerSigningKey = false,
        ValidateTokenReplay = false,
        SaveSigninToken = false,
    };
}
