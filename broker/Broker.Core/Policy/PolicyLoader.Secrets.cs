using System.Data.Common;
using System.Text.RegularExpressions;
using Broker.Core.Policy.Internal;

namespace Broker.Core.Policy;

// The root secret_engines: list and the per-phase secrets: list (docs/secrets.md).
public static partial class PolicyLoader
{
    public const int MaxConnectionLimit = 100;
    public const int DefaultConnectionLimit = 2;

    /// <summary>Engine kinds this broker can run; each is one engine implementation.</summary>
    public static readonly IReadOnlySet<string> SecretEngineTypes = new HashSet<string>(StringComparer.Ordinal) { "postgres" };

    private sealed class EngineDraft
    {
        public string? Name;
        public string? Type;
        public string? Connection;
        public string? PasswordFile;
        public string? PasswordEnv;
        public int? ConnectionLimit;
    }

    private static readonly KeySpec<EngineDraft>[] EngineSchema =
    [
        new("name", Required: true, (r, d, v, p) =>
        {
            d.Name = r.ReadString(v, p);
            if (d.Name is not null && !AgentNameRegex().IsMatch(d.Name))
            {
                r.Error(v, p, $"'{PolicyReader.Shorten(d.Name)}' is not a valid engine name; use 1 to {MaxAgentNameLength} of a-z, 0-9, '-' and '_'");
                d.Name = null;
            }
        }),
        new("type", Required: true, (r, d, v, p) =>
        {
            d.Type = r.ReadString(v, p);
            if (d.Type is not null && !SecretEngineTypes.Contains(d.Type))
            {
                r.Error(v, p, $"unknown engine type '{PolicyReader.Shorten(d.Type)}'; known: {string.Join(", ", SecretEngineTypes.Order(StringComparer.Ordinal))}");
                d.Type = null;
            }
        }),
        new("connection", Required: true, (r, d, v, p) => d.Connection = ReadEngineConnection(r, v, p)),
        new("admin_password_file", Required: false, (r, d, v, p) => d.PasswordFile = r.ReadExistingFile(v, p)),
        new("admin_password_env", Required: false, (r, d, v, p) =>
        {
            d.PasswordEnv = r.ReadString(v, p, maxLength: 128);
            if (d.PasswordEnv is not null && !EnvNameRegex().IsMatch(d.PasswordEnv))
            {
                r.Error(v, p, $"'{PolicyReader.Shorten(d.PasswordEnv)}' is not an environment variable name (A-Z, 0-9, '_', not starting with a digit)");
                d.PasswordEnv = null;
            }
        }),
        new("connection_limit", Required: false, (r, d, v, p) =>
        {
            d.ConnectionLimit = r.ReadInt(v, p);
            if (d.ConnectionLimit is < 1 or > MaxConnectionLimit)
            {
                r.Error(v, p, $"connection_limit is how many sessions one lease's login may hold: 1 to {MaxConnectionLimit}");
                d.ConnectionLimit = null;
            }
        }),
    ];

    private sealed class GrantDraft
    {
        public string? Engine;
        public YNode? EngineNode;
        public string? Role;
        public TimeSpan? MaxLeaseTtl;
        public YNode? TtlNode;
        public GateDraft? Gate;
    }

    private static readonly KeySpec<GateDraft>[] SecretGateSchema = [.. GateSchema.Where(k => k.Name != "scopes")];

    private static readonly KeySpec<GrantDraft>[] GrantSchema =
    [
        new("engine", Required: true, (r, d, v, p) =>
        {
            d.EngineNode = v;
            d.Engine = r.ReadString(v, p, maxLength: MaxAgentNameLength);
        }),
        new("role", Required: true, (r, d, v, p) =>
        {
            d.Role = r.ReadString(v, p, maxLength: 63);
            if (d.Role is not null && !DatabaseRoleRegex().IsMatch(d.Role))
            {
                r.Error(v, p, $"'{PolicyReader.Shorten(d.Role)}' is not a role name this broker grants; use 1 to 63 of a-z, 0-9, '_' starting with a letter or '_'");
                d.Role = null;
            }
        }),
        new("max_lease_ttl", Required: true, (r, d, v, p) =>
        {
            d.TtlNode = v;
            d.MaxLeaseTtl = r.ReadDuration(v, p, MinTtl, MaxTtl);
        }),
        new("gated", Required: false, (r, d, v, p) =>
        {
            if (v is YScalar { IsPlain: true, Value: "false" })
            {
                return;
            }

            var gate = new GateDraft();
            var before = r.Errors.Count;
            if (r.ReadMapping(v, p, SecretGateSchema, gate) && r.Errors.Count == before)
            {
                d.Gate = gate;
            }
        }),
    ];

    /// <param name="named">Every engine name declared, even in an entry with other errors (avoids follow-on errors).</param>
    private static List<SecretEnginePolicy> ReadSecretEngines(PolicyReader reader, YNode node, HashSet<string> named)
    {
        var engines = new List<SecretEnginePolicy>();
        var items = reader.ReadList(node, "secret_engines", nullIsEmpty: true);
        if (items is null)
        {
            return engines;
        }

        var lines = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < items.Count; i++)
        {
            var path = $"secret_engines[{i}]";
            var d = new EngineDraft();
            var before = reader.Errors.Count;
            var read = reader.ReadMapping(items[i], path, EngineSchema, d);
            if (d.Name is not null)
            {
                named.Add(d.Name);
            }

            if (!read || reader.Errors.Count != before || d.Name is null || d.Type is null || d.Connection is null)
            {
                continue;
            }

            if (lines.TryGetValue(d.Name, out var first))
            {
                reader.Error(items[i], path, $"engine name '{d.Name}' is already used at line {first}");
                continue;
            }

            lines[d.Name] = items[i].Line;
            if ((d.PasswordFile is null) == (d.PasswordEnv is null))
            {
                reader.Error(items[i], path, "name the admin credential with exactly one of admin_password_file or admin_password_env (never inline)");
                continue;
            }

            engines.Add(new SecretEnginePolicy(d.Name, d.Type, d.Connection, d.PasswordFile, d.PasswordEnv, d.ConnectionLimit ?? DefaultConnectionLimit));
        }

        return engines;
    }

    /// <summary>A connection string that says where and as whom, but never carries a password.</summary>
    private static string? ReadEngineConnection(PolicyReader reader, YNode node, string path)
    {
        var text = reader.ReadString(node, path, maxLength: 2048);
        if (text is null)
        {
            return null;
        }

        var builder = new DbConnectionStringBuilder();
        try
        {
            builder.ConnectionString = text;
        }
        catch (ArgumentException)
        {
            reader.Error(node, path, "is not a connection string (Key=Value pairs separated by ';')");
            return null;
        }

        // Report the key only: the value is what must not be echoed.
        foreach (var key in builder.Keys.Cast<string>())
        {
            if (key.Replace(" ", "", StringComparison.Ordinal).ToLowerInvariant() is "password" or "pwd" or "passfile")
            {
                reader.Error(node, path, "must not carry a password: the admin credential comes from admin_password_file or admin_password_env, never the policy");
                return null;
            }
        }

        foreach (var required in new[] { "host", "database", "username" })
        {
            if (!builder.Keys.Cast<string>().Any(k => string.Equals(k, required, StringComparison.OrdinalIgnoreCase)))
            {
                reader.Error(node, path, $"must name {required} (e.g. Host=db.internal;Port=5432;Database=orders;Username=broker_admin)");
                return null;
            }
        }

        return text;
    }

    private static List<SecretGrant>? ReadSecretGrants(PolicyReader reader, YNode node, string path, TimeSpan phaseMaxTtl)
    {
        var items = reader.ReadList(node, path, nullIsEmpty: true);
        if (items is null)
        {
            return null;
        }

        var grants = new List<SecretGrant>();
        var lines = new Dictionary<(string, string), int>();
        for (var i = 0; i < items.Count; i++)
        {
            var itemPath = $"{path}[{i}]";
            var d = new GrantDraft();
            var before = reader.Errors.Count;
            if (!reader.ReadMapping(items[i], itemPath, GrantSchema, d) || reader.Errors.Count != before || d.Engine is null || d.Role is null || d.MaxLeaseTtl is null)
            {
                continue;
            }

            if (d.MaxLeaseTtl > phaseMaxTtl)
            {
                reader.Error(d.TtlNode!, $"{itemPath}.max_lease_ttl", $"{PolicyReader.FormatDuration(d.MaxLeaseTtl.Value)} is longer than the phase's max_ttl of {PolicyReader.FormatDuration(phaseMaxTtl)}; a lease never outlives the phase's tokens");
                continue;
            }

            if (lines.TryGetValue((d.Engine, d.Role), out var first))
            {
                reader.Error(items[i], itemPath, $"{d.Engine} as {d.Role} is already granted at line {first}");
                continue;
            }

            lines[(d.Engine, d.Role)] = items[i].Line;
            var gate = d.Gate is { } g
                ? new GatedScopes(new HashSet<string>(StringComparer.Ordinal) { SecretGrant.ApprovalScopeFor(d.Engine, d.Role) }, g.Approvers!, g.Quorum ?? 1, g.Validity ?? DefaultApprovalValidity, g.RequireJustification ?? false)
                : null;
            grants.Add(new SecretGrant(d.Engine, d.Role, d.MaxLeaseTtl.Value, gate, d.EngineNode!.Line));
        }

        return grants.Count == 0 ? null : grants;
    }

    /// <summary>Every grant names a declared engine (checked once both are read, whatever the file order).</summary>
    private static void CheckSecretGrants(PolicyReader reader, IReadOnlySet<string> named, IReadOnlyList<AgentRule> agents)
    {
        foreach (var rule in agents)
        {
            foreach (var (phase, phaseRule) in rule.Phases)
            {
                foreach (var grant in phaseRule.Secrets ?? [])
                {
                    if (!named.Contains(grant.Engine))
                    {
                        var known = named.Count == 0 ? "no secret_engines are declared" : "declared: " + string.Join(", ", named.Order(StringComparer.Ordinal));
                        reader.Error(grant.Line, 1, $"agents '{rule.Name}' phase {phase.ToWire()}: secrets engine '{PolicyReader.Shorten(grant.Engine)}' is not declared under secret_engines ({known})");
                    }
                }
            }
        }
    }

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,62}$")]
    private static partial Regex DatabaseRoleRegex();

    [GeneratedRegex("^[A-Z_][A-Z0-9_]{0,127}$")]
    private static partial Regex EnvNameRegex();
}
