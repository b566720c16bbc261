using System.Collections;
using System.Reflection;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Broker.Core.Policy;
using Json.Schema;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Broker.Core.Tests.Policy;

/// <summary>
/// deploy/policy/policy.schema.json, the JSON Schema editors use for policy files, against the
/// loader it describes: every key table of the loader is the schema's (same names, same required
/// keys), every shipped policy validates, and each refusal the schema can express is refused by
/// both. The YAML becomes JSON the way an editor's YAML language server reads it (YAML 1.2 core
/// scalars), through the YAML library the loader uses.
/// </summary>
public sealed partial class PolicySchemaTests : IDisposable
{
    private static readonly string Repo = FindRepositoryRoot();
    private static readonly JsonSchema Schema = JsonSchema.FromFile(Path.Combine(Repo, "deploy", "policy", "policy.schema.json"));
    private static readonly JsonObject SchemaJson = JsonNode.Parse(File.ReadAllText(Path.Combine(Repo, "deploy", "policy", "policy.schema.json")))!.AsObject();

    private readonly PolicyTestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void The_schema_is_draft_2020_12()
    {
        Assert.Equal("https://json-schema.org/draft/2020-12/schema", SchemaJson["$schema"]!.GetValue<string>());
    }

    /// <summary>The loader's key tables (field name) and where the schema describes the same mapping.</summary>
    public static TheoryData<string, string> KeyTables => new()
    {
        { "RootSchema", "" },
        { "TrustSchema", "/properties/trust" },
        { "SpiffeSchema", "/$defs/spiffe_trust_domain" },
        { "OidcSchema", "/$defs/oidc_issuer" },
        { "AgentSchema", "/$defs/agent" },
        { "PhasesSchema", "/$defs/phases" },
        { "PhaseSchema", "/$defs/phase" },
        { "GateSchema", "/$defs/gate" },
        { "SecretGateSchema", "/$defs/secret_gate" },
        { "GrantSchema", "/$defs/secret_grant" },
        { "EngineSchema", "/$defs/secret_engine" },
        { "SignalsSchema", "/$defs/signals" },
        { "SsfSchema", "/$defs/ssf" },
    };

    [Theory]
    [MemberData(nameof(KeyTables))]
    public void Each_mapping_of_the_schema_has_exactly_the_loaders_keys_and_required_keys(string table, string location)
    {
        var specs = (IEnumerable)typeof(PolicyLoader).GetField(table, BindingFlags.NonPublic | BindingFlags.Static)!.GetValue(null)!;
        var loaderKeys = new List<string>();
        var loaderRequired = new List<string>();
        foreach (var spec in specs)
        {
            var name = (string)spec.GetType().GetProperty("Name")!.GetValue(spec)!;
            loaderKeys.Add(name);
            if ((bool)spec.GetType().GetProperty("Required")!.GetValue(spec)!)
            {
                loaderRequired.Add(name);
            }
        }

        var node = location.Split('/', StringSplitOptions.RemoveEmptyEntries).Aggregate((JsonNode)SchemaJson, (n, part) => n[part]!);
        Assert.False(node["additionalProperties"]!.GetValue<bool>(), $"{location}: unknown keys are refused, as the loader refuses them");
        Assert.Equal(loaderKeys.Order(StringComparer.Ordinal), node["properties"]!.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.Equal(loaderRequired.Order(StringComparer.Ordinal), (node["required"]?.AsArray().Select(r => r!.GetValue<string>()) ?? []).Order(StringComparer.Ordinal));
    }

    public static TheoryData<string> ShippedPolicies => new()
    {
        "deploy/policy/sample-policy.yaml",
        "deploy/compose/policy/policy.yaml",
    };

    [Theory]
    [MemberData(nameof(ShippedPolicies))]
    public void A_shipped_policy_names_the_schema_on_its_first_line_and_validates(string relative)
    {
        var path = Path.Combine(Repo, relative);
        var firstLine = File.ReadLines(path).First();
        var reference = Assert.Single(SchemaLine().Matches(firstLine)).Groups["path"].Value;

        Assert.Equal(Path.Combine(Repo, "deploy", "policy", "policy.schema.json"), Path.GetFullPath(Path.Combine(Path.GetDirectoryName(path)!, reference)));
        AssertValid(File.ReadAllText(path), relative);
    }

    [Fact]
    public void The_kubernetes_configmap_policy_validates()
    {
        var stream = new YamlStream();
        using (var reader = new StreamReader(Path.Combine(Repo, "deploy", "kubernetes", "configmap-policy.yaml")))
        {
            stream.Load(reader);
        }

        var policy = ((YamlScalarNode)((YamlMappingNode)((YamlMappingNode)stream.Documents[0].RootNode)["data"])["policy.yaml"]).Value!;

        AssertValid(policy, "configmap-policy.yaml data.policy.yaml");
    }

    /// <summary>The YAML blocks of docs/policy.md and docs/approvals.md that are whole policies, with the files they name present, load and validate.</summary>
    [Fact]
    public void Every_whole_policy_in_the_docs_that_loads_also_validates()
    {
        var checkedCount = 0;
        foreach (var doc in new[] { "docs/policy.md", "docs/approvals.md", "docs/risk.md", "docs/secrets.md", "README.md" })
        {
            foreach (Match block in YamlBlock().Matches(File.ReadAllText(Path.Combine(Repo, doc))))
            {
                var yaml = block.Groups["body"].Value;
                if (!yaml.StartsWith("version: 1", StringComparison.Ordinal) && !yaml.Contains("\nversion: 1", StringComparison.Ordinal))
                {
                    continue;
                }

                using var dir = new PolicyTestDirectory();
                foreach (Match file in FileReference().Matches(yaml))
                {
                    dir.Touch(file.Groups["file"].Value);
                }

                if (PolicyLoader.LoadFile(dir.WritePolicy(yaml)).Succeeded)
                {
                    AssertValid(yaml, $"{doc} block at offset {block.Index}");
                    checkedCount++;
                }
            }
        }

        Assert.True(checkedCount > 0, "no whole policy found in the docs");
    }

    private const string Valid = """
        version: 1
        trust:
          spiffe:
            - trust_domain: example.org
              jwt_bundle_file: bundle.jwks
          oidc:
            - issuer: https://idp.example.org
              workload_id_prefix: "k8s:"
        agents:
          - name: deployer
            match: spiffe://example.org/agents/*
            owner: olga
            phases:
              planning:
                scopes: [repo:read]
                audiences: [https://api.example.org]
                max_ttl: 5m
              execution:
                scopes: [repo:read, deploy:prod]
                audiences: [https://api.example.org]
                max_ttl: 5m
                risk_ceiling: medium
                on_unknown_risk: deny
                gated_scopes:
                  - scopes: [deploy:prod]
                    approvers: [approver]
                    quorum: 2
                    validity: 10m
                secrets:
                  - engine: pg
                    role: app_reader
                    max_lease_ttl: 5m
                    gated: false
        secret_engines:
          - name: pg
            type: postgres
            connection: Host=127.0.0.1;Database=app;Username=broker
            admin_password_env: PG_ADMIN_PASSWORD
        signals:
          sources: [spiffe://example.org/runtime-protection]
          containment: high
        """;

    [Fact]
    public void The_base_of_the_refusal_cases_is_accepted_by_both()
    {
        _dir.Touch("bundle.jwks");
        PolicyAssert.Loaded(PolicyLoader.LoadFile(_dir.WritePolicy(Valid)));
        AssertValid(Valid, "base");
    }

    /// <summary>A change to <see cref="Valid"/> (old text, or <c>re:</c> and a pattern; new text) and a part of the loader's message for it.</summary>
    public static TheoryData<string, string, string, string> Refusals => new()
    {
        { "unknown root key", "version: 1\n", "version: 1\nextra: true\n", "unknown key 'extra'" },
        { "unknown phase key", "    max_ttl: 5m\n      execution:", "    max_tll: 5m\n      execution:", "max_tll" },
        { "bad phase name", "      planning:", "      planing:", "planing" },
        { "unsupported version", "version: 1\n", "version: 2\n", "unsupported version 2" },
        { "version as text", "version: 1\n", "version: one\n", "whole number" },
        { "scopes not a list", "scopes: [repo:read]\n", "scopes: repo:read\n", "must be a list" },
        { "boolean spelled yes", "    max_ttl: 5m\n      execution:", "    max_ttl: 5m\n        keep_tokens_on_exit: yes\n      execution:", "must be true or false" },
        { "duration without unit", "    max_ttl: 5m\n      execution:", "    max_ttl: 5\n      execution:", "is not a duration" },
        { "duration in words", "validity: 10m", "validity: ten minutes", "is not a duration" },
        { "missing max_ttl", "    max_ttl: 5m\n      execution:", "\n      execution:", "missing required key 'max_ttl'" },
        { "missing agents", "re:agents:\n.*?(?=secret_engines:)", "", "missing required key 'agents'" },
        { "missing match", "    match: spiffe://example.org/agents/*\n", "", "missing required key 'match'" },
        { "missing trust domain", "    - trust_domain: example.org\n      jwt_bundle_file", "    - jwt_bundle_file", "missing required key 'trust_domain'" },
        { "no phases", "re:    phases:\n.*?(?=secret_engines:)", "    phases: {}\n", "define at least one phase" },
        { "empty agents", "re:agents:\n.*?(?=secret_engines:)", "agents: []\n", "list at least one agent" },
        { "bad risk ceiling", "risk_ceiling: medium", "risk_ceiling: severe", "is not a risk level" },
        { "bad unknown-risk stance", "on_unknown_risk: deny", "on_unknown_risk: maybe", "must be allow or deny" },
        { "bad containment", "containment: high", "containment: none", "containment 'none'" },
        { "bad default phase", "    owner: olga\n", "    owner: olga\n    default_phase: review\n", "is not a phase" },
        { "bad engine type", "type: postgres", "type: mysql", "unknown engine type 'mysql'" },
        { "trust domain with scheme", "trust_domain: example.org", "trust_domain: spiffe://example.org", "without a scheme" },
        { "trust domain in upper case", "trust_domain: example.org", "trust_domain: Example.org", "is not a SPIFFE trust domain" },
        { "two JWT bundles", "      jwt_bundle_file: bundle.jwks\n", "      jwt_bundle_file: bundle.jwks\n      jwt_bundle_url: https://spire.example.org/bundle\n", "not both" },
        { "no bundle", "      jwt_bundle_file: bundle.jwks\n", "      refresh: 5m\n", "needs a bundle" },
        { "JWT bundle over http", "      jwt_bundle_file: bundle.jwks\n", "      jwt_bundle_url: http://spire.example.org/bundle\n", "must be an https URL" },
        { "no trust source", "  spiffe:\n    - trust_domain: example.org\n      jwt_bundle_file: bundle.jwks\n  oidc:\n    - issuer: https://idp.example.org\n      workload_id_prefix: \"k8s:\"\n", "  spiffe: []\n", "at least one trust source" },
        { "issuer over http", "issuer: https://idp.example.org", "issuer: http://idp.example.org", "must be an https URL" },
        { "issuer with a query", "issuer: https://idp.example.org", "issuer: https://idp.example.org/?tenant=1", "must not have a query or fragment" },
        { "both JWKS sources", "      workload_id_prefix: \"k8s:\"\n", "      workload_id_prefix: \"k8s:\"\n      jwks_file: bundle.jwks\n      jwks_uri: https://idp.example.org/keys\n", "not both" },
        { "prefix that reads as SPIFFE", "workload_id_prefix: \"k8s:\"", "workload_id_prefix: \"spif\"", "could make an OIDC subject read as a SPIFFE ID" },
        { "prefix with a space", "workload_id_prefix: \"k8s:\"", "workload_id_prefix: \"k8s: x\"", "no spaces" },
        { "bad agent name", "name: deployer", "name: Deploy Bot", "is not a valid agent name" },
        { "owner with a space", "owner: olga", "owner: olga smith", "no spaces or control characters" },
        { "no scopes", "scopes: [repo:read]\n", "scopes: []\n", "list at least one scope" },
        { "duplicate scope", "scopes: [repo:read]\n", "scopes: [repo:read, repo:read]\n", "duplicate scope" },
        { "scope with a space", "scopes: [repo:read]\n", "scopes: [repo read]\n", "is not a valid scope" },
        { "relative audience", "audiences: [https://api.example.org]\n        max_ttl: 5m\n      execution:", "audiences: [api]\n        max_ttl: 5m\n      execution:", "is not a valid audience" },
        { "quorum of zero", "quorum: 2", "quorum: 0", "quorum is the number of distinct approvers" },
        { "quorum above ten", "quorum: 2", "quorum: 11", "quorum is the number of distinct approvers" },
        { "gate without approvers", "            approvers: [approver]\n", "", "missing required key 'approvers'" },
        { "delegation without depth", "    owner: olga\n", "    owner: olga\n    delegate_to: [spiffe://example.org/agents/sub/*]\n", "needs max_delegation_depth" },
        { "depth without delegation", "    owner: olga\n", "    owner: olga\n    max_delegation_depth: 2\n", "needs delegate_to" },
        { "depth too deep", "    owner: olga\n", "    owner: olga\n    delegate_to: [spiffe://example.org/agents/sub/*]\n    max_delegation_depth: 9\n", "between 0 and 8" },
        { "signals without sources", "  sources: [spiffe://example.org/runtime-protection]\n", "", "missing required key 'sources'" },
        { "SSF without keys", "  containment: high", "  containment: high\n  ssf:\n    issuer: https://ssf.example.org", "exactly one of jwks_file or jwks_uri" },
        { "bad database role", "role: app_reader", "role: App-Reader", "is not a role name" },
        { "connection limit of zero", "    admin_password_env: PG_ADMIN_PASSWORD\n", "    admin_password_env: PG_ADMIN_PASSWORD\n    connection_limit: 0\n", "connection_limit is how many sessions" },
        { "password variable in lower case", "admin_password_env: PG_ADMIN_PASSWORD", "admin_password_env: pg_admin_password", "is not an environment variable name" },
        { "no admin credential", "    admin_password_env: PG_ADMIN_PASSWORD\n", "", "exactly one of admin_password_file or admin_password_env" },
        { "secret gate that is true", "gated: false", "gated: true", "must be a mapping" },
        { "secret gate with scopes", "gated: false", "gated:\n              scopes: [x]\n              approvers: [dba]", "unknown key 'scopes'" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void A_refusal_the_schema_can_express_is_refused_by_the_loader_and_the_schema(string what, string from, string to, string loaderSays)
    {
        string yaml;
        if (from.StartsWith("re:", StringComparison.Ordinal))
        {
            var pattern = new Regex(from[3..], RegexOptions.Singleline);
            Assert.Matches(pattern, Valid);
            yaml = pattern.Replace(Valid, to, 1);
        }
        else
        {
            Assert.Contains(from, Valid, StringComparison.Ordinal);
            yaml = Valid.Replace(from, to, StringComparison.Ordinal);
        }

        _dir.Touch("bundle.jwks");

        var loaded = PolicyLoader.LoadFile(_dir.WritePolicy(yaml));
        var evaluated = Schema.Evaluate(ToJson(yaml), new EvaluationOptions { OutputFormat = OutputFormat.List });

        Assert.False(loaded.Succeeded, $"{what}: the loader accepted it");
        Assert.Contains(loaded.Errors, e => e.Message.Contains(loaderSays, StringComparison.Ordinal));
        Assert.False(evaluated.IsValid, $"{what}: the schema accepted it");
    }

    private static void AssertValid(string yaml, string what)
    {
        var result = Schema.Evaluate(ToJson(yaml), new EvaluationOptions { OutputFormat = OutputFormat.List });
        var errors = (result.Details ?? []).Where(d => d.Errors is { Count: > 0 })
            .Select(d => $"{d.InstanceLocation} ({d.EvaluationPath}): {string.Join("; ", d.Errors!.Values)}");
        Assert.True(result.IsValid, $"{what} does not validate against policy.schema.json:\n{string.Join('\n', errors)}");
    }

    /// <summary>
    /// YAML to JSON as a YAML 1.2 language server reads it: plain <c>true</c>/<c>false</c> are
    /// booleans, plain whole numbers are integers, a plain empty value, <c>~</c> or <c>null</c> is
    /// null, and everything else (quoted or not) is a string.
    /// </summary>
    internal static JsonNode? ToJson(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        return Convert(stream.Documents[0].RootNode);
    }

    private static JsonNode? Convert(YamlNode node) => node switch
    {
        YamlMappingNode mapping => new JsonObject(mapping.Children.Select(p => KeyValuePair.Create(((YamlScalarNode)p.Key).Value!, Convert(p.Value)))),
        YamlSequenceNode sequence => new JsonArray([.. sequence.Children.Select(Convert)]),
        YamlScalarNode { Style: ScalarStyle.Plain } scalar => scalar.Value switch
        {
            null or "" or "~" or "null" => null,
            "true" => JsonValue.Create(true),
            "false" => JsonValue.Create(false),
            var text when IntegerText().IsMatch(text) && long.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var number) => JsonValue.Create(number),
            var text => JsonValue.Create(text),
        },
        YamlScalarNode scalar => JsonValue.Create(scalar.Value ?? ""),
        _ => throw new InvalidOperationException($"unexpected YAML node {node.NodeType}"),
    };

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Broker.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("repository root (Broker.sln) not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"^# yaml-language-server: \$schema=(?<path>\S+)$")]
    private static partial Regex SchemaLine();

    [GeneratedRegex("^```ya?ml\\n(?<body>.*?)^```", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex YamlBlock();

    [GeneratedRegex(@"(?:_file|jwks_file): (?<file>[^\s#]+)")]
    private static partial Regex FileReference();

    [GeneratedRegex("^-?[0-9]+$")]
    private static partial Regex IntegerText();
}
