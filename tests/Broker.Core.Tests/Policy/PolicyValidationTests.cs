using Broker.Core.Policy;

namespace Broker.Core.Tests.Policy;

/// <summary>Every validation rule reports the line (and column) of the offending text.</summary>
public sealed class PolicyValidationTests : IDisposable
{
    // A valid policy; tests below change one thing. Line numbers are noted on the right.
    private const string Valid = """
        version: 1
        trust:
          spiffe:
            - trust_domain: example.org
              jwt_bundle_file: td.jwks
        agents:
          - name: a
            match: spiffe://example.org/a
            phases:
              planning:
                scopes: [s]
                audiences: [https://api]
                max_ttl: 1m
        """;

    private readonly PolicyTestDirectory _dir = new();

    public PolicyValidationTests()
    {
        _dir.Touch("td.jwks");
        _dir.Touch("td.pem");
        _dir.Touch("k8s.jwks");
    }

    public void Dispose() => _dir.Dispose();

    private PolicyLoadResult Load(string yaml) => _dir.Load(yaml);

    /// <summary>Replaces exactly one occurrence of <paramref name="from"/> in the valid policy.</summary>
    private PolicyLoadResult LoadWith(string from, string to)
    {
        Assert.Equal(1, Valid.Split(from).Length - 1);
        return Load(Valid.Replace(from, to, StringComparison.Ordinal));
    }

    [Fact]
    public void The_baseline_policy_is_valid() => PolicyAssert.Loaded(Load(Valid));

    // ---- version ---------------------------------------------------------------------------

    [Fact]
    public void An_unsupported_version_is_reported_on_its_line()
    {
        var error = PolicyAssert.SingleError(LoadWith("version: 1", "version: 2"), 1, "unsupported version 2");
        Assert.Equal(10, error.Column);
    }

    [Fact]
    public void A_version_that_is_not_a_number_is_reported() =>
        PolicyAssert.SingleError(LoadWith("version: 1", "version: one"), 1, "must be a whole number");

    // ---- required, unknown and duplicate keys ----------------------------------------------

    [Fact]
    public void A_missing_top_level_key_is_reported_at_the_start_of_its_mapping() =>
        PolicyAssert.SingleError(LoadWith("version: 1\n", ""), 1, "missing required key 'version'");

    [Fact]
    public void A_missing_phase_key_is_reported_at_the_phase() =>
        PolicyAssert.SingleError(LoadWith("        max_ttl: 1m", "        # no ttl"), 11, "agents[0].phases.planning: missing required key 'max_ttl'");

    [Fact]
    public void A_missing_trust_domain_is_reported() =>
        PolicyAssert.HasError(LoadWith("    - trust_domain: example.org\n      jwt", "    - jwt"), 4, "missing required key 'trust_domain'");

    [Fact]
    public void A_misspelt_key_is_an_error_with_a_suggestion()
    {
        var result = LoadWith("scopes: [s]", "scope: [s]");

        var error = PolicyAssert.HasError(result, 11, "unknown key 'scope'; did you mean 'scopes'?");
        Assert.Equal(9, error.Column);
        PolicyAssert.HasError(result, 11, "missing required key 'scopes'");
        Assert.Equal(2, result.Errors.Count);
    }

    [Fact]
    public void An_unknown_key_anywhere_is_an_error()
    {
        var result = Load(Valid + "\nextra: true\n");

        PolicyAssert.SingleError(result, 14, "unknown key 'extra'");
    }

    [Fact]
    public void An_unknown_key_in_a_trust_entry_is_an_error() =>
        PolicyAssert.SingleError(LoadWith("      jwt_bundle_file: td.jwks", "      jwt_bundle_file: td.jwks\n      jwks_url: https://x"), 6, "unknown key 'jwks_url'");

    [Fact]
    public void A_duplicate_key_is_reported_on_the_second_occurrence_with_the_first_line()
    {
        var error = PolicyAssert.SingleError(LoadWith("        max_ttl: 1m", "        max_ttl: 1m\n        max_ttl: 59m"), 14, "duplicate key 'max_ttl' (first at line 13)");
        Assert.Equal(9, error.Column);
    }

    [Fact]
    public void A_duplicate_top_level_key_does_not_hide_later_errors()
    {
        var result = Load("""
            version: 1
            version: 1
            trust:
              spiffe:
                - trust_domain: example.org
                  jwt_bundle_file: td.jwks
            agents:
              - name: a
                match: spiffe://example.org/a
                phases:
                  planning: { scopes: [s], audiences: [https://api], max_ttl: 2h }
            """);

        PolicyAssert.HasError(result, 2, "duplicate key 'version'");
        PolicyAssert.HasError(result, 11, "out of range");
        Assert.Equal(2, result.Errors.Count);
    }

    // ---- node types ------------------------------------------------------------------------

    [Fact]
    public void A_list_where_a_mapping_belongs_is_reported() =>
        PolicyAssert.HasError(Load("""
            version: 1
            trust: [example.org]
            agents: []
            """), 2, "trust: must be a mapping, found a list");

    [Fact]
    public void A_single_value_where_a_list_belongs_is_reported() =>
        PolicyAssert.SingleError(LoadWith("scopes: [s]", "scopes: s"), 11, "scopes: must be a list, found a single value");

    [Fact]
    public void A_list_where_a_single_value_belongs_is_reported() =>
        PolicyAssert.SingleError(LoadWith("max_ttl: 1m", "max_ttl: [1m]"), 13, "max_ttl: must be a single value, found a list");

    [Fact]
    public void A_mapping_as_a_list_item_where_text_belongs_is_reported() =>
        PolicyAssert.SingleError(LoadWith("scopes: [s]", "scopes: [{ name: s }]"), 11, "scopes[0]: must be a single value, found a mapping");

    [Fact]
    public void An_empty_required_value_is_reported() =>
        PolicyAssert.SingleError(LoadWith("    match: spiffe://example.org/a", "    match:"), 8, "match: must not be empty");

    [Fact]
    public void A_policy_that_is_not_a_mapping_is_reported() =>
        PolicyAssert.SingleError(Load("- version: 1\n"), 1, "must be a mapping, found a list");

    [Fact]
    public void A_boolean_must_be_true_or_false() =>
        PolicyAssert.SingleError(LoadWith("      jwt_bundle_file: td.jwks", "      jwt_bundle_file: td.jwks\n      single_use_proofs: yes"), 6, "must be true or false, found 'yes'");

    // ---- phases ----------------------------------------------------------------------------

    [Fact]
    public void An_unknown_phase_is_reported_on_its_line() =>
        PolicyAssert.SingleError(LoadWith("      planning:", "      deploy:"), 10, "unknown phase 'deploy'");

    [Fact]
    public void A_misspelt_phase_gets_a_suggestion() =>
        PolicyAssert.SingleError(LoadWith("      planning:", "      planing:"), 10, "did you mean 'planning'?");

    [Fact]
    public void An_agent_without_phases_is_reported() =>
        PolicyAssert.SingleError(Load("""
            version: 1
            trust:
              spiffe:
                - trust_domain: example.org
                  jwt_bundle_file: td.jwks
            agents:
              - name: a
                match: spiffe://example.org/a
                phases: {}
            """), 9, "define at least one phase");

    [Fact]
    public void Empty_scope_and_audience_lists_are_reported()
    {
        var result = Load(Valid.Replace("[s]", "[]", StringComparison.Ordinal).Replace("[https://api]", "[]", StringComparison.Ordinal));

        PolicyAssert.HasError(result, 11, "list at least one scope");
        PolicyAssert.HasError(result, 12, "list at least one audience");
    }

    // ---- durations -------------------------------------------------------------------------

    [Theory]
    [InlineData("2h", "out of range; it must be between 30s and 1h")]
    [InlineData("61m", "out of range")]
    [InlineData("29s", "out of range")]
    [InlineData("0s", "out of range")]
    [InlineData("10", "is not a duration")]
    [InlineData("1.5h", "is not a duration")]
    [InlineData("1h30m", "is not a duration")]
    [InlineData("-5m", "is not a duration")]
    [InlineData("10M", "is not a duration")]
    [InlineData("10 m", "is not a duration")]
    public void A_bad_max_ttl_is_reported(string value, string fragment) =>
        PolicyAssert.SingleError(LoadWith("max_ttl: 1m", $"max_ttl: {value}"), 13, fragment);

    [Theory]
    [InlineData("9s")]
    [InlineData("25h")]
    public void A_refresh_outside_10s_to_24h_is_reported(string value) =>
        PolicyAssert.SingleError(LoadWith("      jwt_bundle_file: td.jwks", $"      jwt_bundle_file: td.jwks\n      refresh: {value}"), 6, "between 10s and 24h");

    // ---- scopes and audiences --------------------------------------------------------------

    [Theory]
    [InlineData("\"repo read\"")]
    [InlineData("\"repo\\tread\"")]
    [InlineData("repo:read!")]
    [InlineData("\"scope,other\"")]
    [InlineData("é")]
    public void A_scope_with_characters_outside_the_allowed_set_is_reported(string scope) =>
        PolicyAssert.HasError(LoadWith("scopes: [s]", $"scopes: [ok, {scope}]"), 11, "scopes[1]");

    [Fact]
    public void A_scope_longer_than_128_characters_is_reported()
    {
        PolicyAssert.Loaded(LoadWith("scopes: [s]", $"scopes: [{new string('a', 128)}]"));
        PolicyAssert.SingleError(LoadWith("scopes: [s]", $"scopes: [{new string('a', 129)}]"), 11, "is not a valid scope");
    }

    [Fact]
    public void An_empty_scope_is_reported() =>
        PolicyAssert.SingleError(LoadWith("scopes: [s]", "scopes: [s, \"\"]"), 11, "scopes[1]: must not be empty");

    [Fact]
    public void A_duplicate_scope_is_reported_on_its_own_line()
    {
        var result = LoadWith("scopes: [s]", "scopes:\n          - repo:read\n          - tickets:read\n          - repo:read");

        PolicyAssert.SingleError(result, 14, "duplicate scope 'repo:read' (first at line 12)");
    }

    [Theory]
    [InlineData("not-a-uri")]
    [InlineData("/relative/path")]
    [InlineData("\"https://api example\"")]
    public void An_audience_that_is_not_an_absolute_uri_is_reported(string audience) =>
        PolicyAssert.SingleError(LoadWith("audiences: [https://api]", $"audiences: [{audience}]"), 12, "is not a valid audience");

    [Fact]
    public void An_audience_longer_than_256_characters_is_reported() =>
        PolicyAssert.SingleError(LoadWith("audiences: [https://api]", $"audiences: [https://{new string('a', 250)}.org]"), 12, "is not a valid audience");

    [Fact]
    public void A_duplicate_audience_is_reported() =>
        PolicyAssert.SingleError(LoadWith("audiences: [https://api]", "audiences: [https://api, spiffe://example.org/x, https://api]"), 12, "duplicate audience 'https://api'");

    // ---- agents ----------------------------------------------------------------------------

    [Fact]
    public void Duplicate_agent_names_are_reported_on_the_second_agent()
    {
        var result = Load(Valid + """

              - name: a
                match: spiffe://example.org/b
                phases:
                  planning: { scopes: [s], audiences: [https://api], max_ttl: 1m }
            """);

        PolicyAssert.SingleError(result, 14, "agent name 'a' is already used at line 7");
    }

    [Theory]
    [InlineData("Deployer")]
    [InlineData("deploy er")]
    [InlineData("deploy.er")]
    [InlineData("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
    public void An_invalid_agent_name_is_reported(string name) =>
        PolicyAssert.SingleError(LoadWith("  - name: a", $"  - name: \"{name}\""), 7, "is not a valid agent name");

    [Fact]
    public void A_policy_without_agents_is_reported() =>
        PolicyAssert.SingleError(Load("""
            version: 1
            trust:
              spiffe:
                - trust_domain: example.org
                  jwt_bundle_file: td.jwks
            agents: []
            """), 6, "agents: list at least one agent");

    [Fact]
    public void An_empty_agents_key_is_reported() =>
        PolicyAssert.SingleError(Load("""
            version: 1
            trust:
              spiffe:
                - trust_domain: example.org
                  jwt_bundle_file: td.jwks
            agents:
            """), 6, "list at least one agent");

    // ---- patterns --------------------------------------------------------------------------

    [Theory]
    [InlineData("spiffe://other.org/a", "trust domain 'other.org', which is not declared")]
    [InlineData("spiffe://*.org/a", "must be written out")]
    [InlineData("SPIFFE://example.org/a", "must start with 'spiffe://' in lower case")]
    [InlineData("spiffe://example.org", "needs a path")]
    [InlineData("spiffe://example.org/", "needs a path")]
    [InlineData("spiffe://example.org/a/../b", "invalid path segment '..'")]
    [InlineData("spiffe://example.org/a//b", "invalid path segment ''")]
    [InlineData("spiffe://example.org/a?b", "invalid path segment 'a?b'")]
    [InlineData("spiffe://example.org/**/a", "'**' is only allowed as the last path segment")]
    [InlineData("spiffe://example.org/a**", "'**' is only allowed as the last path segment")]
    [InlineData("k8s:system:*", "no OIDC issuers are configured")]
    [InlineData("\"*\"", "must be a spiffe:// pattern")]
    public void A_bad_match_pattern_is_reported(string pattern, string fragment) =>
        PolicyAssert.SingleError(LoadWith("match: spiffe://example.org/a", $"match: {pattern}"), 8, fragment);

    [Fact]
    public void An_oidc_pattern_must_start_with_a_configured_prefix()
    {
        var yaml = """
            version: 1
            trust:
              oidc:
                - issuer: https://k8s.example
                  workload_id_prefix: "k8s:"
            agents:
              - name: a
                match: "ci:repo:*"
                phases:
                  planning: { scopes: [s], audiences: [https://api], max_ttl: 1m }
              - name: b
                match: "k8s:"
                phases:
                  planning: { scopes: [s], audiences: [https://api], max_ttl: 1m }
            """;

        var result = Load(yaml);

        PolicyAssert.HasError(result, 8, "configured prefixes: 'k8s:'");
        PolicyAssert.HasError(result, 12, "must be a spiffe:// pattern or start with");
        Assert.Equal(2, result.Errors.Count);
        PolicyAssert.Loaded(Load(yaml
            .Replace("match: \"ci:repo:*\"", "match: \"k8s:system:serviceaccount:*\"", StringComparison.Ordinal)
            .Replace("match: \"k8s:\"", "match: \"k8s:sa\"", StringComparison.Ordinal)));
    }

    [Fact]
    public void Agent_patterns_are_checked_against_trust_even_when_agents_come_first()
    {
        PolicyAssert.Loaded(Load("""
            version: 1
            agents:
              - name: a
                match: spiffe://example.org/a
                phases:
                  planning: { scopes: [s], audiences: [https://api], max_ttl: 1m }
            trust:
              spiffe:
                - trust_domain: example.org
                  jwt_bundle_file: td.jwks
            """));
    }

    // ---- trust -----------------------------------------------------------------------------

    [Fact]
    public void A_policy_without_a_trust_source_is_reported()
    {
        var result = Load("""
            version: 1
            trust:
              spiffe: []
              oidc: []
            agents:
              - name: a
                match: spiffe://example.org/a
                phases:
                  planning: { scopes: [s], audiences: [https://api], max_ttl: 1m }
            """);

        PolicyAssert.HasError(result, 3, "declare at least one trust source");
    }

    [Fact]
    public void A_missing_trust_section_is_reported() =>
        PolicyAssert.HasError(Load("""
            version: 1
            agents:
              - name: a
                match: spiffe://example.org/a
                phases:
                  planning: { scopes: [s], audiences: [https://api], max_ttl: 1m }
            """), 1, "missing required key 'trust'");

    [Fact]
    public void Duplicate_trust_domains_are_reported_on_the_second()
    {
        var result = LoadWith("      jwt_bundle_file: td.jwks", "      jwt_bundle_file: td.jwks\n    - trust_domain: example.org\n      x509_bundle_file: td.pem");

        PolicyAssert.SingleError(result, 6, "trust domain 'example.org' is already declared at line 4");
    }

    [Theory]
    [InlineData("spiffe://example.org", "without a scheme")]
    [InlineData("Example.org", "is not a SPIFFE trust domain")]
    [InlineData("example.org:8443", "is not a SPIFFE trust domain")]
    [InlineData("exa mple.org", "is not a SPIFFE trust domain")]
    public void A_malformed_trust_domain_is_reported(string domain, string fragment)
    {
        var result = Load($"""
            version: 1
            trust:
              spiffe:
                - trust_domain: "{domain}"
                  jwt_bundle_file: td.jwks
                - trust_domain: example.org
                  jwt_bundle_file: td.jwks
            agents:
              - name: a
                match: spiffe://example.org/a
                phases:
                  planning: {"{"} scopes: [s], audiences: [https://api], max_ttl: 1m {"}"}
            """);

        PolicyAssert.SingleError(result, 4, fragment);
    }

    [Fact]
    public void A_jwt_bundle_file_and_url_together_are_reported_on_the_later_key()
    {
        var result = LoadWith("      jwt_bundle_file: td.jwks", "      jwt_bundle_file: td.jwks\n      jwt_bundle_url: https://spire.example.org/bundle");

        PolicyAssert.SingleError(result, 6, "set jwt_bundle_file or jwt_bundle_url, not both");
    }

    [Fact]
    public void A_trust_domain_without_any_bundle_is_reported() =>
        PolicyAssert.SingleError(LoadWith("      jwt_bundle_file: td.jwks", "      refresh: 1m"), 4, "needs a bundle");

    [Theory]
    [InlineData("http://spire.example.org/bundle", "must be an https URL")]
    [InlineData("http://localhost/bundle", "must be an https URL")]
    [InlineData("spire.example.org/bundle", "is not an absolute URL")]
    [InlineData("https://user:pw@spire.example.org/bundle", "must not carry credentials")]
    public void A_bad_jwt_bundle_url_is_reported(string url, string fragment) =>
        PolicyAssert.SingleError(LoadWith("      jwt_bundle_file: td.jwks", $"      jwt_bundle_url: {url}"), 5, fragment);

    [Theory]
    [InlineData("jwt_bundle_file: missing.jwks")]
    [InlineData("x509_bundle_file: missing.pem")]
    public void A_referenced_bundle_file_that_does_not_exist_is_reported(string entry)
    {
        var error = PolicyAssert.SingleError(LoadWith("      jwt_bundle_file: td.jwks", $"      jwt_bundle_file: td.jwks\n      {entry.Replace("jwt_bundle_file", "x509_bundle_file", StringComparison.Ordinal)}"), 6, "does not exist");

        Assert.Contains(_dir.Path, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bundle_path_that_is_a_folder_is_reported()
    {
        Directory.CreateDirectory(Path.Combine(_dir.Path, "bundles"));

        PolicyAssert.SingleError(LoadWith("jwt_bundle_file: td.jwks", "jwt_bundle_file: bundles"), 5, "is a folder, not a file");
    }

    [Fact]
    public void A_missing_jwks_file_is_reported() =>
        PolicyAssert.HasError(Load(OidcPolicy("      jwks_file: nope.jwks")), 6, "file '" + Path.Combine(_dir.Path, "nope.jwks") + "' does not exist");

    [Fact]
    public void A_jwks_file_and_uri_together_are_reported() =>
        PolicyAssert.SingleError(Load(OidcPolicy("      jwks_file: k8s.jwks\n      jwks_uri: https://k8s.example/keys")), 7, "set jwks_file or jwks_uri, not both");

    [Theory]
    [InlineData("http://k8s.example", "must be an https URL (http only for localhost")]
    [InlineData("k8s.example", "is not an absolute URL")]
    [InlineData("https://k8s.example/?x=1", "must not have a query or fragment")]
    [InlineData("https://k8s.example/#frag", "must not have a query or fragment")]
    public void A_bad_issuer_is_reported(string issuer, string fragment)
    {
        var yaml = OidcPolicy("").Replace("issuer: https://k8s.example", $"issuer: \"{issuer}\"", StringComparison.Ordinal);

        PolicyAssert.HasError(Load(yaml), 4, fragment);
    }

    [Fact]
    public void Duplicate_issuers_are_reported_on_the_second() =>
        PolicyAssert.HasError(Load(OidcPolicy("    - issuer: https://k8s.example\n      workload_id_prefix: \"other:\"")), 6, "issuer 'https://k8s.example' is already declared at line 4");

    [Fact]
    public void Overlapping_workload_id_prefixes_are_reported() =>
        PolicyAssert.SingleError(Load(OidcPolicy("    - issuer: https://ci.example\n      workload_id_prefix: \"k8s:ci:\"")), 7, "overlaps issuer 'https://k8s.example''s prefix 'k8s:' (line 5)");

    [Theory]
    [InlineData("\"spiffe://example.org/\"")]
    [InlineData("\"SPIFFE:\"")]
    // A start of 'spiffe:' that a chosen subject completes ('fe://example.org/admin').
    [InlineData("s")]
    [InlineData("spif")]
    [InlineData("Spiffe")]
    public void A_workload_id_prefix_that_could_pass_for_a_spiffe_id_is_reported(string prefix)
    {
        var yaml = OidcPolicy("").Replace("workload_id_prefix: \"k8s:\"", $"workload_id_prefix: {prefix}", StringComparison.Ordinal);

        PolicyAssert.HasError(Load(yaml), 5, "could make an OIDC subject read as a SPIFFE ID");
    }

    private static string OidcPolicy(string extraIssuerLines) => $$"""
        version: 1
        trust:
          oidc:
            - issuer: https://k8s.example
              workload_id_prefix: "k8s:"
        {{extraIssuerLines}}
        agents:
          - name: a
            match: "k8s:system:serviceaccount:ops:*"
            phases:
              planning: { scopes: [s], audiences: [https://api], max_ttl: 1m }
        """;

    // ---- YAML itself -----------------------------------------------------------------------

    [Fact]
    public void A_yaml_syntax_error_is_reported_with_its_line()
    {
        var error = PolicyAssert.SingleError(LoadWith("scopes: [s]", "scopes: [s"), 11, "YAML syntax error");

        Assert.Equal(_dir.PolicyPath, error.File);
    }

    [Fact]
    public void A_bad_indent_is_a_syntax_error_on_its_line() =>
        PolicyAssert.SingleError(LoadWith("    match: spiffe://example.org/a", "   match: spiffe://example.org/a"), 8, "YAML syntax error");

    [Fact]
    public void An_empty_file_is_reported() => PolicyAssert.SingleError(Load(""), 1, "the policy is empty");

    [Fact]
    public void A_second_document_is_reported() =>
        PolicyAssert.SingleError(Load(Valid + "\n---\nversion: 1\n"), 14, "one YAML document");

    [Fact]
    public void Anchors_and_aliases_are_refused()
    {
        var result = LoadWith("scopes: [s]", "scopes: &common [s]\n        audiences_copy: *common");

        PolicyAssert.HasError(result, 11, "anchors are not supported");
        PolicyAssert.HasError(result, 12, "aliases are not supported");
    }

    [Fact]
    public void Yaml_tags_are_refused() =>
        PolicyAssert.SingleError(LoadWith("max_ttl: 1m", "max_ttl: !!str 1m"), 13, "tags ('tag:yaml.org,2002:str') are not supported");

    [Fact]
    public void Text_that_is_not_utf8_is_reported()
    {
        File.WriteAllBytes(_dir.PolicyPath, [.. "version: 1\n# "u8, 0xFF, 0xFE, (byte)'\n']);

        PolicyAssert.SingleError(PolicyLoader.LoadFile(_dir.PolicyPath), 1, "not valid UTF-8");
    }

    [Fact]
    public void An_oversized_policy_is_refused_before_parsing()
    {
        File.WriteAllText(_dir.PolicyPath, "# " + new string('x', PolicyLoader.MaxPolicyBytes));

        PolicyAssert.SingleError(PolicyLoader.LoadFile(_dir.PolicyPath), 1, "the limit is");
    }

    // ---- all errors, in order --------------------------------------------------------------

    [Fact]
    public void Every_error_in_a_file_is_reported_in_line_order()
    {
        var result = Load("""
            version: 3
            trust:
              spiffe:
                - trust_domain: example.org
                  jwt_bundle_file: missing.jwks
                  refersh: 5m
            agents:
              - name: a
                match: spiffe://other.org/a
                phases:
                  planning:
                    scopes: ["bad scope"]
                    audiences: [https://api]
                    max_ttl: 2h
                  deploy:
                    scopes: [s]
              - name: a
                match: spiffe://example.org/b
                phases:
                  execution: { scopes: [s, s], audiences: [https://api], max_ttl: 1m }
            """);

        Assert.Null(result.Policy);
        Assert.Equal([1, 5, 6, 9, 12, 14, 15, 17, 20], result.Errors.Select(e => e.Line));
        Assert.All(result.Errors, e => Assert.Equal(_dir.PolicyPath, e.File));
        Assert.Contains("did you mean 'refresh'?", result.Errors[2].Message, StringComparison.Ordinal);
    }
}
