using System.Globalization;
using System.Security.Claims;
using Broker.Revocation;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Logging;

namespace Broker.ResourceServer.Internal;

/// <summary>
/// What the SDK adds to stock JwtBearer: after the signature, issuer, audience, type and
/// lifetime checks pass, refuse revoked tokens, and follow the stale stance when revocation
/// state is unknown.
/// </summary>
internal sealed partial class BrokerTokenCheck(BrokerRevocationClient revocations, ILogger<BrokerTokenCheck> logger)
{
    public void Attach(JwtBearerOptions options, TimeSpan maxTokenLifetime)
    {
        var events = options.Events ??= new JwtBearerEvents();
        var validated = events.OnTokenValidated;
        events.OnTokenValidated = async context =>
        {
            await validated(context);
            if (context.Result is null)
            {
                OnTokenValidated(context, maxTokenLifetime);
            }
        };

        var challenge = events.OnChallenge;
        events.OnChallenge = context =>
        {
            if (context.AuthenticateFailure is BrokerTokenRefusedException refused)
            {
                context.Error = "invalid_token";
                context.ErrorDescription = refused.Description;
            }

            return challenge(context);
        };
    }

    internal void OnTokenValidated(TokenValidatedContext context, TimeSpan maxTokenLifetime)
    {
        if (context.Principal is not { } principal || !TryReadFacts(principal, out var facts))
        {
            context.Fail(new BrokerTokenRefusedException(BrokerTokenRefusedException.NotBrokerToken));
            return;
        }

        // A revocation is kept only the broker's maximum token lifetime past what it covers;
        // a token living longer would outlast its own revocation.
        if (!long.TryParse(principal.FindFirst("exp")?.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var expires)
            || expires - facts.IssuedAt.ToUnixTimeSeconds() > (long)maxTokenLifetime.TotalSeconds)
        {
            context.Fail(new BrokerTokenRefusedException(BrokerTokenRefusedException.LifetimeTooLong));
            return;
        }

        switch (revocations.Check(facts, out var kind))
        {
            case RevocationCheck.Revoked:
                Log.Revoked(logger, facts.TokenId, kind);
                context.Fail(new BrokerTokenRefusedException(BrokerTokenRefusedException.Revoked));
                break;
            case RevocationCheck.StateUnknown:
                Log.StateUnknown(logger, facts.TokenId);
                context.Fail(new BrokerTokenRefusedException(BrokerTokenRefusedException.StateUnknown));
                break;
            default:
                break;
        }
    }

    /// <summary>Reads the claims revocation matches on; false when any is missing.</summary>
    internal static bool TryReadFacts(ClaimsPrincipal principal, out TokenFacts facts)
    {
        var jti = principal.FindFirst(BrokerClaimTypes.TokenId)?.Value;
        var sub = principal.FindFirst(BrokerClaimTypes.Subject)?.Value;
        var task = principal.FindFirst(BrokerClaimTypes.Task)?.Value;
        var phase = principal.FindFirst(BrokerClaimTypes.Phase)?.Value;
        var iat = principal.FindFirst("iat")?.Value;
        if (string.IsNullOrEmpty(jti) || string.IsNullOrEmpty(sub) || string.IsNullOrEmpty(task) || string.IsNullOrEmpty(phase)
            || !long.TryParse(iat, NumberStyles.Integer, CultureInfo.InvariantCulture, out var issuedAt)
            || issuedAt < 0 || issuedAt > DateTimeOffset.MaxValue.ToUnixTimeSeconds())
        {
            facts = default;
            return false;
        }

        // A delegated token is revoked with its ancestors and the agents that delegated it; a
        // chain that cannot be read is not a Broker token.
        // Most tokens are direct: they skip the claim list's copy on every request.
        string[] ancestorIds = principal.FindFirst(DelegationClaims.AncestorTokenIds) is null
            ? []
            : principal.FindAll(DelegationClaims.AncestorTokenIds).Select(c => c.Value).ToArray();
        if (!DelegationClaims.TryRead(principal.FindFirst(DelegationClaims.Act)?.Value, ancestorIds, out var actors, out var ancestors)
            || !DelegationClaims.TryReadAncestorPhase(principal.FindFirst(DelegationClaims.AncestorPhase)?.Value, actors is not null, out var ancestorPhase))
        {
            facts = default;
            return false;
        }

        facts = new TokenFacts(jti, sub, task, phase, DateTimeOffset.FromUnixTimeSeconds(issuedAt), actors, ancestors, ancestorPhase);
        return true;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 5120, Level = LogLevel.Information, Message = "Refused revoked token {TokenId} (revoked by {Kind})")]
        public static partial void Revoked(ILogger logger, string tokenId, RevocationKind kind);

        [LoggerMessage(EventId = 5121, Level = LogLevel.Warning, Message = "Refused token {TokenId}: revocation state unknown (stream stale, StaleStance = FailClosed)")]
        public static partial void StateUnknown(ILogger logger, string tokenId);
    }
}
