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
        public YNode? SsfNode;
    }

    private sealed class SsfDraft
    {
        public string? Issuer;
        public YNode? JwksFileNode;
        public string? JwksFile;
        public YNode? JwksUriNode;
        public Uri? JwksUri;
        public string? Audience;
        public TimeSpan? MaxAge;
    }

    private static readonly KeySpec<SsfDraft>[] SsfSchema =
    [
        new("issuer", Required: true, (r, d, v, p) => d.Issuer = ReadUrl(r, v, p, allowLoopbackHttp: true, isIssuer: true) is null ? null : ((YScalar)v).Value),
        new("jwks_file", Required: false, (r, d, v, p) => { d.JwksFileNode = v; d.JwksFile = r.ReadExistingFile(v, p); }),
        new("jwks_uri", Required: false, (r, d, v, p) => { d.JwksUriNode = v; d.JwksUri = ReadUrl(r, v, p, allowLoopbackHttp: true); }),
        new("audience", Required: false, (r, d, v, p) => d.Audience = r.ReadString(v, p, maxLength: 2048)),
        new("max_age", Required: false, (r, d, v, p) => d.MaxAge = r.ReadDuration(v, p, TimeSpan.FromSeconds(30), TimeSpan.FromHours(1))),
    ];

    private static SsfTransmitterPolicy? ReadSsf(PolicyReader reader, YNode node)
    {
        var d = new SsfDraft();
        if (!reader.ReadMapping(node, "signals.ssf", SsfSchema, d))
        {
            return null;
        }

        if ((d.JwksFileNode is null) == (d.JwksUriNode is null))
        {
            reader.Error(d.JwksUriNode ?? d.JwksFileNode ?? node, "signals.ssf", "set exactly one of jwks_file or jwks_uri: the transmitter's signing keys");
            return null;
        }

        return d.Issuer is null || (d.JwksFile is null && d.JwksUri is null)
            ? null
            : new SsfTransmitterPolicy(d.Issuer, d.JwksFile, d.JwksUri, d.Audience, d.MaxAge ?? SsfTransmitterPolicy.DefaultMaxAge);
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
        new("ssf", Required: false, (r, d, v, p) => d.SsfNode = v),
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

        var ssf = d.SsfNode is null ? null : ReadSsf(reader, d.SsfNode);
        return reader.Errors.Count != before
            ? null
            : new SignalPolicy(sources.AsReadOnly(), d.ContainmentOff ? null : d.Containment ?? RiskLevel.Critical, d.MaxValidity ?? SignalPolicy.DefaultMaxValidity) { Ssf = ssf };
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
