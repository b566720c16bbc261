using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Infrastructure;

namespace Broker.ResourceServer;

/// <summary>
/// Declares on a handler, controller action or MCP tool method that the caller's Broker token
/// must hold every one of the scopes (exact match), as <see cref="BrokerScopeRequirement"/>.
/// Anything that honours <see cref="IAuthorizationRequirementData"/> enforces it: endpoint
/// authorization (401 without a token, 403 without the scope) and the MCP SDK's authorization
/// filters (a tool the token may not call is left out of <c>tools/list</c> and refused on
/// <c>tools/call</c>). Repeat the attribute or combine it with <see cref="RequireBrokerPhaseAttribute"/>.
/// </summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Method | AttributeTargets.Delegate, AllowMultiple = true, Inherited = true)]
public sealed class RequireBrokerScopeAttribute : Attribute, IAuthorizationRequirementData
{
    /// <summary>Requires every one of <paramref name="scopes"/>.</summary>
    /// <param name="scopes">At least one scope; none empty or containing whitespace.</param>
    public RequireBrokerScopeAttribute(params string[] scopes) => Requirement = new BrokerScopeRequirement(scopes);

    /// <summary>The requirement this attribute stands for.</summary>
    public BrokerScopeRequirement Requirement { get; }

    /// <summary>The scopes required, all of them.</summary>
    public IReadOnlyList<string> Scopes => Requirement.Scopes;

    /// <inheritdoc />
    public IEnumerable<IAuthorizationRequirement> GetRequirements() => [new DenyAnonymousAuthorizationRequirement(), Requirement];
}

/// <summary>
/// Declares that the caller's Broker token must be for one phase (planning, execution or
/// recovery), as <see cref="BrokerPhaseRequirement"/>; enforced wherever
/// <see cref="IAuthorizationRequirementData"/> is (see <see cref="RequireBrokerScopeAttribute"/>).
/// </summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Method | AttributeTargets.Delegate, AllowMultiple = false, Inherited = true)]
public sealed class RequireBrokerPhaseAttribute : Attribute, IAuthorizationRequirementData
{
    /// <summary>Requires the token's phase to be <paramref name="phase"/>.</summary>
    /// <param name="phase">One of <see cref="BrokerPhases"/>.</param>
    public RequireBrokerPhaseAttribute(string phase) => Requirement = new BrokerPhaseRequirement(phase);

    /// <summary>The requirement this attribute stands for.</summary>
    public BrokerPhaseRequirement Requirement { get; }

    /// <summary>The phase required.</summary>
    public string Phase => Requirement.Phase;

    /// <inheritdoc />
    public IEnumerable<IAuthorizationRequirement> GetRequirements() => [new DenyAnonymousAuthorizationRequirement(), Requirement];
}
