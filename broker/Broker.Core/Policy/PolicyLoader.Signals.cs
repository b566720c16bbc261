using Broker.Core.Policy.Internal;
using Broker.Core.Risk;

namespace Broker.Core.Policy;

// The signals: section and the per-phase risk keys (docs/policy.md, docs/risk.md).
public static partial class PolicyLoader
{
    public static readonly TimeSpan MinSignalValidity = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan MaxSignalValidity = TimeSpan.FromHours(24);

    private const string LevelNames = "none, low, medium, high or critical";

    private sealed class SignalsDraft(TrustDraft trust)
    {
        public TrustDraft Trust { get; } = trust;
        public YNode? SourcesNode;
        public RiskLevel? Containment;
        public bool ContainmentOff;
        public TimeSpan? MaxValidity;
    }

    private static readonly KeySpec<SignalsDraft>[] SignalsSchema =
    [
        new("sources", Required: true, (r, d, v, p) => d.SourcesNode = v),
        new("containment", Required: false, (r, d, v, p) =>
        {
            var text = r.ReadString(v, p, maxLength: 32);
            if (text is null)
            {
                return;
            }

            if (text == "off")
            {
                d.ContainmentOff = true;
            }
            else if (!RiskLevels.TryParse(text, out var level))
            {
                r.Error(v, p, $"'{PolicyReader.Shorten(text)}' is not a containment level; use low, medium, high, critical or off");
            }
            else if (level == RiskLevel.None)
            {
                r.Error(v, p, "containment 'none' would revoke on every signal; use low, medium, high, critical or off");
            }
            else
            {
                d.Containment = level;
            }
        }),
        new("max_validity", Required: false, (r, d, v, p) => d.MaxValidity = r.ReadDuration(v, p, MinSignalValidity, MaxSignalValidity)),
    ];

    private static SignalPolicy? ReadSignals(PolicyReader reader, YNode node, TrustDraft trust)
    {
        var d = new SignalsDraft(trust);
        var before = reader.Errors.Count;
        if (!reader.ReadMapping(node, "signals", SignalsSchema, d) || d.SourcesNode is null)
        {
            return null;
        }

        var items = reader.ReadList(d.SourcesNode, "signals.sources");
        if (items is null)
        {
            return null;
        }

        if (items.Count == 0)
        {
            reader.Error(d.SourcesNode, "signals.sources", "list at least one runtime-protection workload allowed to report signals");
            return null;
        }

        var sources = new List<WorkloadPattern>();
        for (var i = 0; i < items.Count; i++)
        {
            if (ReadPattern(reader, items[i], $"signals.sources[{i}]", trust) is { } pattern)
            {
                sources.Add(pattern);
            }
        }

        return reader.Errors.Count != before
            ? null
            : new SignalPolicy(sources.AsReadOnly(), d.ContainmentOff ? null : d.Containment ?? RiskLevel.Critical, d.MaxValidity ?? SignalPolicy.DefaultMaxValidity);
    }

    private static RiskLevel? ReadRiskLevel(PolicyReader reader, YNode node, string path)
    {
        var text = reader.ReadString(node, path, maxLength: 32);
        if (text is null)
        {
            return null;
        }

        if (!RiskLevels.TryParse(text, out var level))
        {
            reader.Error(node, path, $"'{PolicyReader.Shorten(text)}' is not a risk level; use {LevelNames}");
            return null;
        }

        return level;
    }

    private static UnknownRiskStance? ReadStance(PolicyReader reader, YNode node, string path)
    {
        switch (reader.ReadString(node, path, maxLength: 32))
        {
            case null: return null;
            case "allow": return UnknownRiskStance.Allow;
            case "deny": return UnknownRiskStance.Deny;
            case var other:
                reader.Error(node, path, $"'{PolicyReader.Shorten(other)}' must be allow or deny");
                return null;
        }
    }
}
