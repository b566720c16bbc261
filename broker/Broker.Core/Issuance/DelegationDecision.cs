using Broker.Core.Attestation;
using Broker.Core.Errors;
using Broker.Core.Policy;

namespace Broker.Core.Issuance;

/// <summary>
/// What delegation adds to the sub-agent's own policy decision: the delegating agent's rule must
/// name the sub-agent (<c>delegate_to</c>) and allow the chain's new depth, and the new token may
/// only narrow the subject token (scopes a subset, same audience, phase no more privileged).
/// </summary>
internal static class DelegationDecision
{
    public static void Authorize(BrokerPolicy policy, SubjectToken subject, WorkloadIdentity actor, TaskPhase phase, IReadOnlyList<string> scopes, string audience)
    {
        var rule = policy.FindRuleForTokenSubject(subject.Holder);
        if (rule is null || !rule.MayDelegateTo(actor.WorkloadId))
        {
            throw BrokerErrors.PermissionDenied(BrokerErrors.DelegationNotAllowed, "Policy does not let the subject token's agent delegate to this workload (delegate_to).");
        }

        var depth = subject.Depth + 1;
        if (depth > rule.MaxDelegationDepth)
        {
            throw BrokerErrors.PermissionDenied(
                BrokerErrors.DelegationDepthExceeded,
                $"This exchange would make a chain of depth {depth}; policy allows {rule.MaxDelegationDepth} (max_delegation_depth).",
                new Dictionary<string, string> { ["max_delegation_depth"] = rule.MaxDelegationDepth.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        }

        if (!IsNoMorePrivileged(phase, subject.Phase))
        {
            throw BrokerErrors.PermissionDenied(BrokerErrors.PhaseEscalation, $"A {subject.Phase.ToWire()} token cannot be exchanged for a {phase.ToWire()} one.");
        }

        var wider = scopes.Where(s => !subject.Scopes.Contains(s, StringComparer.Ordinal)).ToArray();
        if (wider.Length > 0)
        {
            var list = string.Join(' ', wider);
            throw BrokerErrors.PermissionDenied(
                BrokerErrors.ScopeNotSubset,
                $"Scopes not in the subject token: {list}",
                new Dictionary<string, string> { ["scopes"] = list });
        }

        if (!string.Equals(audience, subject.Audience, StringComparison.Ordinal))
        {
            throw BrokerErrors.PermissionDenied(BrokerErrors.DelegationAudienceMismatch, "A delegated token is for the subject token's audience only.");
        }
    }

    /// <summary>
    /// The phase order for delegation: planning is below execution and recovery, which are not
    /// comparable (each acts on production in its own way). A token may be exchanged for its own
    /// phase or for planning, never across.
    /// </summary>
    public static bool IsNoMorePrivileged(TaskPhase delegated, TaskPhase parent) =>
        delegated == parent || delegated == TaskPhase.Planning;
}
