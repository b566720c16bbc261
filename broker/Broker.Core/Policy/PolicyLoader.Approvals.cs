using Broker.Core.Policy.Internal;

namespace Broker.Core.Policy;

// The per-phase gated_scopes: list and the per-agent owner (docs/approvals.md).
public static partial class PolicyLoader
{
    public static readonly TimeSpan DefaultApprovalValidity = TimeSpan.FromMinutes(15);
    public static readonly TimeSpan MinApprovalValidity = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan MaxApprovalValidity = TimeSpan.FromHours(24);
    public const int MaxQuorum = 10;

    private sealed class GateDraft
    {
        public IReadOnlySet<string>? Scopes;
        public YNode? ScopesNode;
        public IReadOnlySet<string>? Approvers;
        public int? Quorum;
        public TimeSpan? Validity;
        public bool? RequireJustification;
    }

    private static readonly KeySpec<GateDraft>[] GateSchema =
    [
        new("scopes", Required: true, (r, d, v, p) =>
        {
            d.ScopesNode = v;
            d.Scopes = ReadStringSet(r, v, p, "scope", IsValidScope, $"1 to {MaxScopeLength} characters of A-Z a-z 0-9 : . _ / * -");
        }),
        new("approvers", Required: true, (r, d, v, p) => d.Approvers = ReadStringSet(r, v, p, "approver group", IsValidGroup,
            "a group or role name of 1 to 128 characters without spaces")),
        new("quorum", Required: false, (r, d, v, p) =>
        {
            d.Quorum = r.ReadInt(v, p);
            if (d.Quorum is < 1 or > MaxQuorum)
            {
                r.Error(v, p, $"quorum is the number of distinct approvers needed: 1 to {MaxQuorum}");
                d.Quorum = null;
            }
        }),
        new("validity", Required: false, (r, d, v, p) => d.Validity = r.ReadDuration(v, p, MinApprovalValidity, MaxApprovalValidity)),
        new("require_justification", Required: false, (r, d, v, p) => d.RequireJustification = r.ReadBool(v, p)),
    ];

    private static List<GatedScopes>? ReadGates(PolicyReader reader, YNode node, string path, IReadOnlySet<string> phaseScopes)
    {
        var items = reader.ReadList(node, path, nullIsEmpty: true);
        if (items is null)
        {
            return null;
        }

        var gates = new List<GatedScopes>();
        var gatedAt = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < items.Count; i++)
        {
            var itemPath = $"{path}[{i}]";
            var d = new GateDraft();
            var before = reader.Errors.Count;
            if (!reader.ReadMapping(items[i], itemPath, GateSchema, d) || reader.Errors.Count != before || d.Scopes is null || d.Approvers is null)
            {
                continue;
            }

            foreach (var scope in d.Scopes.Order(StringComparer.Ordinal))
            {
                if (!phaseScopes.Contains(scope))
                {
                    reader.Error(d.ScopesNode!, $"{itemPath}.scopes", $"'{PolicyReader.Shorten(scope)}' is gated but not among the phase's scopes; gate only scopes the phase allows");
                }
                else if (gatedAt.TryGetValue(scope, out var line))
                {
                    reader.Error(d.ScopesNode!, $"{itemPath}.scopes", $"'{PolicyReader.Shorten(scope)}' is already gated at line {line}; one gate per scope");
                }
                else
                {
                    gatedAt[scope] = d.ScopesNode!.Line;
                }
            }

            gates.Add(new GatedScopes(d.Scopes, d.Approvers, d.Quorum ?? 1, d.Validity ?? DefaultApprovalValidity, d.RequireJustification ?? false));
        }

        return gates.Count == 0 ? null : gates;
    }

    private static string? ReadOperatorName(PolicyReader reader, YNode node, string path)
    {
        var text = reader.ReadString(node, path, maxLength: 256);
        if (text is not null && !IsValidGroup(text))
        {
            reader.Error(node, path, "an owner is the operator's name as their token names them: no spaces or control characters");
            return null;
        }

        return text;
    }

    private static bool IsValidGroup(string text) =>
        text.Length is > 0 and <= 256 && !text.Any(c => char.IsWhiteSpace(c) || char.IsControl(c));
}
