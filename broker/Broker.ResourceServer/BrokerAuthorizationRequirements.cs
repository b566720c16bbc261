using System.Security.Claims;
using Microsoft.AspNetCore.Authorization;

namespace Broker.ResourceServer;

/// <summary>
/// The token must carry every one of <see cref="Scopes"/> in its space-separated <c>scope</c>
/// claim, each matched exactly (ordinal, whole scope: <c>deploy:prod</c> is not satisfied by
/// <c>deploy:prod-evil</c> or <c>deploy:production</c>). Handles itself, so no service
/// registration is needed.
/// </summary>
public sealed class BrokerScopeRequirement : AuthorizationHandler<BrokerScopeRequirement>, IAuthorizationRequirement
{
    /// <summary>Creates the requirement.</summary>
    /// <param name="scopes">Scopes that must all be present; at least one, none empty or containing spaces.</param>
    public BrokerScopeRequirement(params string[] scopes)
    {
        ArgumentNullException.ThrowIfNull(scopes);
        if (scopes.Length == 0)
        {
            throw new ArgumentException("At least one scope is required.", nameof(scopes));
        }

        foreach (var scope in scopes)
        {
            if (string.IsNullOrWhiteSpace(scope) || scope.Any(char.IsWhiteSpace))
            {
                throw new ArgumentException($"'{scope}' is not a scope: scopes are non-empty and contain no whitespace.", nameof(scopes));
            }
        }

        Scopes = [.. scopes];
    }

    /// <summary>The scopes required, all of them.</summary>
    public IReadOnlyList<string> Scopes { get; }

    /// <summary>True when <paramref name="user"/> holds every required scope.</summary>
    public bool IsSatisfiedBy(ClaimsPrincipal user)
    {
        var granted = GrantedScopes(user);
        return Scopes.All(granted.Contains);
    }

    /// <summary>Every scope in the user's <c>scope</c> claims (space-separated string, or one claim per scope).</summary>
    public static HashSet<string> GrantedScopes(ClaimsPrincipal user)
    {
        var granted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var claim in user.FindAll(BrokerClaimTypes.Scope))
        {
            foreach (var scope in claim.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                granted.Add(scope);
            }
        }

        return granted;
    }

    /// <inheritdoc />
    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, BrokerScopeRequirement requirement)
    {
        if (requirement.IsSatisfiedBy(context.User))
        {
            context.Succeed(requirement);
        }
        else
        {
            context.Fail(new AuthorizationFailureReason(this, $"Scope required: {string.Join(' ', requirement.Scopes)}"));
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public override string ToString() => $"BrokerScopeRequirement: {string.Join(' ', Scopes)}";
}

/// <summary>
/// The token's <c>phase</c> claim must be <see cref="Phase"/> exactly. Handles itself, so no
/// service registration is needed.
/// </summary>
public sealed class BrokerPhaseRequirement : AuthorizationHandler<BrokerPhaseRequirement>, IAuthorizationRequirement
{
    /// <summary>Creates the requirement.</summary>
    /// <param name="phase">planning, execution or recovery (exact, lower case).</param>
    public BrokerPhaseRequirement(string phase)
    {
        if (!BrokerPhases.IsKnown(phase))
        {
            throw new ArgumentException($"'{phase}' is not a phase: use planning, execution or recovery.", nameof(phase));
        }

        Phase = phase;
    }

    /// <summary>The phase required.</summary>
    public string Phase { get; }

    /// <summary>True when <paramref name="user"/>'s token is for <see cref="Phase"/>.</summary>
    public bool IsSatisfiedBy(ClaimsPrincipal user)
    {
        // Exactly one phase claim: a token claiming two phases satisfies neither.
        var phases = user.FindAll(BrokerClaimTypes.Phase).ToList();
        return phases.Count == 1 && string.Equals(phases[0].Value, Phase, StringComparison.Ordinal);
    }

    /// <inheritdoc />
    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, BrokerPhaseRequirement requirement)
    {
        if (requirement.IsSatisfiedBy(context.User))
        {
            context.Succeed(requirement);
        }
        else
        {
            context.Fail(new AuthorizationFailureReason(this, $"Phase required: {requirement.Phase}"));
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public override string ToString() => $"BrokerPhaseRequirement: {Phase}";
}
