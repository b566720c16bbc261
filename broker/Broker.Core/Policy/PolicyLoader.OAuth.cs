using Broker.Core.Policy.Internal;

namespace Broker.Core.Policy;

// The per-agent default_phase: the phase of an OAuth token request that carries no agent_task
// authorization details (docs/oauth.md). Absent, such requests are refused.
public static partial class PolicyLoader
{
    // A property, not a field: AgentSchema reads it while static fields of other partial files initialize.
    private static KeySpec<AgentDraft>[] OAuthAgentSchema =>
    [
        new("default_phase", Required: false, (r, d, v, p) =>
        {
            var text = r.ReadString(v, p, maxLength: 32);
            if (text is null)
            {
                return;
            }

            if (!TaskPhaseNames.TryParse(text, out var phase))
            {
                r.Error(v, p, $"'{PolicyReader.Shorten(text)}' is not a phase; default_phase is planning, execution or recovery");
                return;
            }

            d.DefaultPhase = phase;
            d.DefaultPhaseNode = v;
        }),
    ];

    /// <summary>A default phase must be one the agent rule defines, or every such request would be refused.</summary>
    private static void CheckDefaultPhase(PolicyReader reader, AgentDraft d, string path)
    {
        if (d.DefaultPhase is { } phase && !d.PhasesInvalid && d.Phases.Count > 0 && !d.Phases.ContainsKey(phase))
        {
            reader.Error(d.DefaultPhaseNode!, $"{path}.default_phase", $"'{phase.ToWire()}' is not among this agent's phases; define it under phases or pick one that is");
            d.DefaultPhase = null;
        }
    }
}
