using Broker.Core.Issuance;
using Broker.Core.Signing;
using Broker.Revocation;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Microsoft.Extensions.Options;

namespace Broker.Core.Revocation;

/// <summary>What introspection found.</summary>
public sealed record IntrospectionResult(bool Active, string? InactiveReason, JsonWebToken? Token)
{
    /// <summary>The token's granted scopes (its <c>scope</c> claim), empty when there is no token.</summary>
    public IReadOnlyList<string> Scopes => Token is not null && Token.TryGetPayloadValue<string>("scope", out var scope)
        ? scope.Split(' ', StringSplitOptions.RemoveEmptyEntries)
        : [];

    /// <summary>The token's task (its <c>task</c> claim).</summary>
    public string? TaskId => Token is not null && Token.TryGetPayloadValue<string>("task", out var task) ? task : null;

    /// <summary>The token's phase, by wire name (its <c>phase</c> claim).</summary>
    public string? Phase => Token is not null && Token.TryGetPayloadValue<string>("phase", out var phase) ? phase : null;

    /// <summary>What revocation matched the token on, its delegation chain included; null when it never got that far.</summary>
    public TokenFacts? Facts { get; init; }
}

/// <summary>
/// Checks a Broker access token as a resource server would (signature against this broker's
/// published keys, issuer, type, lifetime with 30 s skew), then against the revocation index.
/// The caller must first confirm the node is current (<see cref="RevocationFeed.EnsureCurrent"/>).
/// </summary>
public sealed class TokenIntrospector
{
    public const int MaxTokenLength = 8 * 1024;

    private readonly JsonWebTokenHandler _handler = new();
    private readonly SigningKeyRing _keys;
    private readonly RevocationFeed _feed;
    private readonly TimeProvider _time;
    private readonly string _issuer;

    public TokenIntrospector(SigningKeyRing keys, RevocationFeed feed, IOptions<IssuanceOptions> issuance, TimeProvider time)
    {
        _keys = keys;
        _feed = feed;
        _time = time;
        _issuer = issuance.Value.Issuer;
    }

    public async Task<IntrospectionResult> IntrospectAsync(string token)
    {
        if (string.IsNullOrEmpty(token) || token.Length > MaxTokenLength || !_handler.CanReadToken(token))
        {
            return new IntrospectionResult(false, "malformed", null);
        }

        var now = _time.GetUtcNow();
        var parameters = new TokenValidationParameters
        {
            ValidIssuer = _issuer,
            ValidateAudience = false,
            ValidTypes = [TokenMinter.TokenType],
            ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.EcdsaSha384],
            IssuerSigningKeys = _keys.Published(now),
            ValidateLifetime = false,
            RequireExpirationTime = true,
            TryAllIssuerSigningKeys = false,
        };
        var result = await _handler.ValidateTokenAsync(token, parameters);
        if (!result.IsValid)
        {
            return new IntrospectionResult(false, result.Exception switch
            {
                SecurityTokenInvalidIssuerException => "wrong_issuer",
                SecurityTokenInvalidTypeException => "malformed",
                _ => "invalid_signature",
            }, null);
        }

        var jwt = (JsonWebToken)result.SecurityToken;
        var skew = TimeSpan.FromSeconds(30);
        if (jwt.ValidTo <= now.UtcDateTime - skew)
        {
            return new IntrospectionResult(false, "expired", jwt);
        }

        if (jwt.ValidFrom > now.UtcDateTime + skew)
        {
            return new IntrospectionResult(false, "not_yet_valid", jwt);
        }

        if (!TryReadChain(jwt, out var actors, out var ancestors)
            || !DelegationClaims.TryReadAncestorPhase(jwt.TryGetPayloadValue<string>(DelegationClaims.AncestorPhase, out var chainPhase) ? chainPhase : null, actors is not null, out var ancestorPhase))
        {
            return new IntrospectionResult(false, "malformed", null);
        }

        var facts = new TokenFacts(
            jwt.Id,
            jwt.Subject,
            jwt.TryGetPayloadValue<string>("task", out var task) ? task : "",
            jwt.TryGetPayloadValue<string>("phase", out var phase) ? phase : "",
            new DateTimeOffset(jwt.IssuedAt, TimeSpan.Zero),
            actors,
            ancestors,
            ancestorPhase);
        return _feed.Index.IsRevoked(facts, out _)
            ? new IntrospectionResult(false, "revoked", jwt) { Facts = facts }
            : new IntrospectionResult(true, null, jwt) { Facts = facts };
    }

    /// <summary>A delegated token's chain (<see cref="DelegationClaims"/>); true with nulls for a direct token.</summary>
    private static bool TryReadChain(JsonWebToken jwt, out string[]? actors, out string[]? ancestors)
    {
        var act = jwt.TryGetClaim(DelegationClaims.Act, out var claim) ? claim.Value : null;
        // jwt.Claims builds every claim of the token: only a delegated token pays for it.
        string[] ids = jwt.TryGetClaim(DelegationClaims.AncestorTokenIds, out _)
            ? jwt.Claims.Where(c => c.Type == DelegationClaims.AncestorTokenIds).Select(c => c.Value).ToArray()
            : [];
        return DelegationClaims.TryRead(act, ids, out actors, out ancestors);
    }
}
