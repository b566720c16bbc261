using Broker.Core.Policy.Internal;
using Broker.Revocation;

namespace Broker.Core.Policy;

// Per agent rule: which sub-agents its agents may hand a token down to (delegate_to) and how
// long a chain may grow (max_delegation_depth), docs/policy.md. Absent, its agents cannot delegate.
public static partial class PolicyLoader
{
    // A property, not a field: AgentSchema reads it while static fields of other partial files initialize.
    private static KeySpec<AgentDraft>[] DelegationAgentSchema =>
    [
        new("delegate_to", Required: false, (r, d, v, p) =>
        {
            d.DelegateToNode = v;
            var items = r.ReadList(v, p);
            if (items is null)
            {
                d.DelegationInvalid = true;
                return;
            }

            if (items.Count == 0)
            {
                r.Error(v, p, "list at least one sub-agent pattern, or leave delegate_to out");
                d.DelegationInvalid = true;
                return;
            }

            for (var i = 0; i < items.Count; i++)
            {
                if (ReadPattern(r, items[i], $"{p}[{i}]", d.Trust) is { } pattern)
                {
                    d.DelegateTo.Add(pattern);
                }
                else
                {
                    d.DelegationInvalid = true;
                }
            }
        }),
        new("max_delegation_depth", Required: false, (r, d, v, p) =>
        {
            d.MaxDelegationDepthNode = v;
            if (r.ReadInt(v, p) is not { } depth)
            {
                d.DelegationInvalid = true;
                return;
            }

            if (depth > DelegationClaims.MaxDepth)
            {
                r.Error(v, p, $"must be between 0 and {DelegationClaims.MaxDepth}, found {depth}");
                d.DelegationInvalid = true;
                return;
            }

            d.MaxDelegationDepth = depth;
        }),
    ];

    /// <summary>The two keys only mean something together: either alone would allow nothing, silently.</summary>
    private static void CheckDelegation(PolicyReader reader, AgentDraft d, string path)
    {
        if (d.DelegationInvalid)
        {
            return;
        }

        if (d.DelegateToNode is not null && d.MaxDelegationDepth == 0)
        {
            reader.Error(d.MaxDelegationDepthNode ?? d.DelegateToNode, $"{path}.max_delegation_depth", "delegate_to needs max_delegation_depth of 1 or more; with 0 (the default) no delegation is allowed");
            d.DelegationInvalid = true;
        }
        else if (d.DelegateToNode is null && d.MaxDelegationDepth > 0)
        {
            reader.Error(d.MaxDelegationDepthNode!, $"{path}.delegate_to", "max_delegation_depth needs delegate_to naming the sub-agents this rule's agents may delegate to");
            d.DelegationInvalid = true;
        }
    }
}
