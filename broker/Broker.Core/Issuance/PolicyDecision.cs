using Broker.Core.Attestation;
using Broker.Core.Errors;
using Broker.Core.Policy;

namespace Broker.Core.Issuance;

/// <summary>Applies the agent rules: a request outside policy is refused as a whole, never trimmed.</summary>
public static class PolicyDecision
{
    public static PhaseRule Authorize(BrokerPolicy policy, WorkloadIdentity identity, TaskPhase phase, IReadOnlyList<string> scopes, string audience)
    {
        var rule = policy.FindRule(identity)
            ?? throw BrokerErrors.PermissionDenied(BrokerErrors.AgentNotAllowed, "No policy rule allows this workload.");

        if (!rule.Phases.TryGetValue(phase, out var phaseRule))
        {
            throw BrokerErrors.PermissionDenied(BrokerErrors.PhaseNotAllowed, $"Policy allows this workload no {phase.ToWire()} credentials.");
        }

        if (!AllAllowed(scopes, phaseRule))
        {
            var list = string.Join(' ', scopes.Where(s => !phaseRule.Scopes.Contains(s)));
            throw BrokerErrors.PermissionDenied(
                BrokerErrors.ScopeNotAllowed,
                $"Scopes not allowed in phase {phase.ToWire()}: {list}",
                new Dictionary<string, string> { ["scopes"] = list, ["phase"] = phase.ToWire() });
        }

        if (!phaseRule.Audiences.Contains(audience))
        {
            throw BrokerErrors.PermissionDenied(BrokerErrors.AudienceNotAllowed, $"Audience not allowed in phase {phase.ToWire()}.");
        }

        return phaseRule;
    }

    // The success path checks without building the list of refused scopes.
    private static bool AllAllowed(IReadOnlyList<string> scopes, PhaseRule rule)
    {
        for (var i = 0; i < scopes.Count; i++)
        {
            if (!rule.Scopes.Contains(scopes[i]))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// The phase of a request that named none (a standard OAuth client's): the agent rule's
    /// <c>default_phase</c>. Without one the request is refused, saying what to send instead.
    /// </summary>
    public static TaskPhase DefaultPhase(BrokerPolicy policy, WorkloadIdentity identity)
    {
        var rule = policy.FindRule(identity)
            ?? throw BrokerErrors.PermissionDenied(BrokerErrors.AgentNotAllowed, "No policy rule allows this workload.");
        return rule.DefaultPhase ?? throw BrokerErrors.InvalidArgument(
            BrokerErrors.PhaseRequired,
            $"Name the task and phase in authorization_details (type agent_task, with task_id and phase): policy sets no default_phase for agent rule '{rule.Name}'.");
    }
}
