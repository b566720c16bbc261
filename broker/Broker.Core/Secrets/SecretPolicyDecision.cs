using Broker.Core.Attestation;
using Broker.Core.Errors;
using Broker.Core.Policy;

namespace Broker.Core.Secrets;

/// <summary>Applies the agent rules to a downstream-credential request: the agent's rule, its phase, and that phase's <c>secrets:</c>.</summary>
public static class SecretPolicyDecision
{
    public static (PhaseRule Phase, SecretGrant Grant) Authorize(BrokerPolicy policy, WorkloadIdentity identity, TaskPhase phase, string engine, string role)
    {
        var rule = policy.FindRule(identity)
            ?? throw BrokerErrors.PermissionDenied(BrokerErrors.AgentNotAllowed, "No policy rule allows this workload.");

        if (!rule.Phases.TryGetValue(phase, out var phaseRule))
        {
            throw BrokerErrors.PermissionDenied(BrokerErrors.PhaseNotAllowed, $"Policy allows this workload no {phase.ToWire()} credentials.");
        }

        var grant = phaseRule.Secrets?.FirstOrDefault(g => g.Engine == engine && g.Role == role)
            ?? throw BrokerErrors.PermissionDenied(
                SecretErrors.SecretNotAllowed,
                $"Policy gives this workload no '{engine}' credential as role '{role}' in phase {phase.ToWire()}.",
                new Dictionary<string, string> { ["engine"] = engine, ["role"] = role, ["phase"] = phase.ToWire() });
        return (phaseRule, grant);
    }

    /// <summary>Engine and role names as policy allows them (checked before they reach policy, logs or audit).</summary>
    public static void ValidateNames(string engine, string role)
    {
        static bool Ok(string text, int max) => text.Length is > 0 && text.Length <= max && text.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '_');

        if (!Ok(engine, PolicyLoader.MaxAgentNameLength) || !Ok(role, 63))
        {
            throw BrokerErrors.InvalidArgument(SecretErrors.SecretInvalid, "engine and role are required: names as policy declares them (a-z, 0-9, '-', '_').");
        }
    }
}
