using System.Security.Cryptography;
using System.Text;
using Broker.Core.Policy;

namespace Broker.Core.Tests.Policy;

public sealed class PolicyLoaderTests : IDisposable
{
    internal const string FullPolicy = """
        version: 1
        trust:
          spiffe:
            - trust_domain: example.org
              jwt_bundle_file: bundles/example.org.jwks
              x509_bundle_file: bundles/example.org.pem
              refresh: 2m
              single_use_proofs: true
            - trust_domain: partner.example
              jwt_bundle_url: https://spire.partner.example/bundle.jwks
          oidc:
            - issuer: https://kubernetes.default.svc.cluster.local
              jwks_file: bundles/k8s.jwks
              subject_claim: sub
              workload_id_prefix: "k8s:"
              refresh: 1h
            - issuer: https://token.actions.githubusercontent.com
        agents:
          - name: deployer
            match: spiffe://example.org/agents/deployer/*
            phases:
              planning:
                scopes: [repo:read, tickets:read]
                audiences: [https://api.example.org]
                max_ttl: 10m
              execution:
                scopes: [deploy:write]
                audiences: [https://deploy.example.org, spiffe://example.org/deployer-api]
                max_ttl: 5m
          - name: triage
            match: "k8s:system:serviceaccount:ops:*"
            phases:
              recovery:
                scopes: [tickets:write, "repo/*:read"]
                audiences: ["urn:example:tickets"]
                max_ttl: 1h
        """;

    private readonly PolicyTestDirectory _dir = new();

    public PolicyLoaderTests()
    {
        _dir.Touch("bundles/example.org.jwks");
        _dir.Touch("bundles/example.org.pem");
        _dir.Touch("bundles/k8s.jwks");
    }

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_valid_policy_loads_into_the_model_it_describes()
    {
        var policy = PolicyAssert.Loaded(_dir.Load(FullPolicy));

        Assert.Equal(_dir.PolicyPath, policy.Source);
        Assert.Equal(2, policy.Trust.SpiffeDomains.Count);
        var exampleOrg = policy.Trust.SpiffeDomains[0];
        Assert.Equal("example.org", exampleOrg.TrustDomain);
        Assert.Equal(Path.Combine(_dir.Path, "bundles", "example.org.jwks"), exampleOrg.JwtBundleFile);
        Assert.Equal(Path.Combine(_dir.Path, "bundles", "example.org.pem"), exampleOrg.X509BundleFile);
        Assert.Null(exampleOrg.JwtBundleUrl);
        Assert.Equal(TimeSpan.FromMinutes(2), exampleOrg.RefreshInterval);
        Assert.True(exampleOrg.SingleUseProofs);

        var partner = policy.Trust.SpiffeDomains[1];
        Assert.Equal(new Uri("https://spire.partner.example/bundle.jwks"), partner.JwtBundleUrl);
        Assert.Null(partner.JwtBundleFile);

        var k8s = policy.Trust.OidcIssuers[0];
        Assert.Equal("https://kubernetes.default.svc.cluster.local", k8s.Issuer);
        Assert.Equal(Path.Combine(_dir.Path, "bundles", "k8s.jwks"), k8s.JwksFile);
        Assert.Null(k8s.JwksUri);
        Assert.Equal("k8s:", k8s.WorkloadIdPrefix);
        Assert.Equal(TimeSpan.FromHours(1), k8s.RefreshInterval);

        Assert.Collection(
            policy.Agents,
            deployer =>
            {
                Assert.Equal("deployer", deployer.Name);
                Assert.Equal("spiffe://example.org/agents/deployer/*", deployer.Match.Text);
                Assert.Equal([TaskPhase.Planning, TaskPhase.Execution], deployer.Phases.Keys.Order());
                var planning = deployer.Phases[TaskPhase.Planning];
                Assert.Equal(["repo:read", "tickets:read"], planning.Scopes.Order(StringComparer.Ordinal));
                Assert.Equal(["https://api.example.org"], planning.Audiences);
                Assert.Equal(TimeSpan.FromMinutes(10), planning.MaxTtl);
                var execution = deployer.Phases[TaskPhase.Execution];
                Assert.Contains("spiffe://example.org/deployer-api", execution.Audiences);
                Assert.Equal(TimeSpan.FromMinutes(5), execution.MaxTtl);
            },
            triage =>
            {
                Assert.Equal("triage", triage.Name);
                var recovery = Assert.Single(triage.Phases).Value;
                Assert.Contains("repo/*:read", recovery.Scopes);
                Assert.Equal(TimeSpan.FromHours(1), recovery.MaxTtl);
            });
    }

    [Fact]
    public void Optional_keys_take_their_documented_defaults()
    {
        var policy = PolicyAssert.Loaded(_dir.Load(FullPolicy));

        var partner = policy.Trust.SpiffeDomains[1];
        Assert.Equal(TimeSpan.FromMinutes(5), partner.RefreshInterval);
        Assert.False(partner.SingleUseProofs);
        Assert.Null(partner.X509BundleFile);

        var github = policy.Trust.OidcIssuers[1];
        Assert.Equal("sub", github.SubjectClaim);
        Assert.Equal("oidc:https://token.actions.githubusercontent.com#", github.WorkloadIdPrefix);
        Assert.Null(github.JwksUri);
        Assert.Null(github.JwksFile);
        Assert.Equal(TimeSpan.FromMinutes(5), github.RefreshInterval);
        Assert.False(github.SingleUseProofs);
    }

    [Fact]
    public void The_digest_is_the_sha256_of_the_file_bytes()
    {
        var path = _dir.WritePolicy(FullPolicy);
        var expected = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

        var policy = PolicyAssert.Loaded(PolicyLoader.LoadFile(path));

        Assert.Equal(expected, policy.Digest);
        Assert.Matches("^sha256:[0-9a-f]{64}$", policy.Digest);
    }

    [Fact]
    public void The_digest_covers_every_byte_including_comments_and_a_byte_order_mark()
    {
        var plain = PolicyAssert.Loaded(_dir.Load(FullPolicy)).Digest;
        var commented = PolicyAssert.Loaded(_dir.Load(FullPolicy + "\n# reviewed\n")).Digest;

        var bom = Encoding.UTF8.GetPreamble().Concat(Encoding.UTF8.GetBytes(FullPolicy)).ToArray();
        File.WriteAllBytes(_dir.PolicyPath, bom);
        var withBom = PolicyAssert.Loaded(PolicyLoader.LoadFile(_dir.PolicyPath)).Digest;

        Assert.NotEqual(plain, commented);
        Assert.NotEqual(plain, withBom);
        Assert.Equal("sha256:" + Convert.ToHexStringLower(SHA256.HashData(bom)), withBom);
    }

    [Fact]
    public void Parsing_text_gives_the_same_policy_and_digest_as_loading_the_file()
    {
        var fromFile = PolicyAssert.Loaded(_dir.Load(FullPolicy));
        var fromText = PolicyAssert.Loaded(PolicyLoader.Parse(FullPolicy, "inline", _dir.Path));

        Assert.Equal(fromFile.Digest, fromText.Digest);
        Assert.Equal("inline", fromText.Source);
        Assert.Equal(fromFile.Agents.Select(a => a.Name), fromText.Agents.Select(a => a.Name));
    }

    [Fact]
    public void Absolute_bundle_paths_are_kept_as_written()
    {
        var absolute = _dir.Touch("elsewhere/abs.jwks");
        var policy = PolicyAssert.Loaded(_dir.Load($$"""
            version: 1
            trust:
              spiffe:
                - trust_domain: example.org
                  jwt_bundle_file: {{absolute}}
            agents:
              - name: a
                match: spiffe://example.org/a
                phases:
                  planning: { scopes: [s], audiences: ["https://api"], max_ttl: 1m }
            """));

        Assert.Equal(absolute, policy.Trust.SpiffeDomains[0].JwtBundleFile);
    }

    [Fact]
    public void A_loopback_http_issuer_is_accepted_for_local_use()
    {
        var policy = PolicyAssert.Loaded(_dir.Load("""
            version: 1
            trust:
              oidc:
                - issuer: http://127.0.0.1:8080
                  jwks_uri: http://localhost:8080/keys
            agents:
              - name: a
                match: "oidc:http://127.0.0.1:8080#ci-*"
                phases:
                  planning: { scopes: [s], audiences: ["https://api"], max_ttl: 1m }
            """));

        Assert.Equal(new Uri("http://localhost:8080/keys"), policy.Trust.OidcIssuers[0].JwksUri);
    }

    [Fact]
    public void Durations_at_the_limits_are_accepted()
    {
        var policy = PolicyAssert.Loaded(_dir.Load("""
            version: 1
            trust:
              spiffe:
                - trust_domain: example.org
                  jwt_bundle_file: bundles/example.org.jwks
                  refresh: 10s
                - trust_domain: other.example
                  jwt_bundle_file: bundles/example.org.jwks
                  refresh: 24h
            agents:
              - name: a
                match: spiffe://example.org/a
                phases:
                  planning: { scopes: [s], audiences: ["https://api"], max_ttl: 30s }
                  execution: { scopes: [s], audiences: ["https://api"], max_ttl: 60m }
            """));

        Assert.Equal(TimeSpan.FromSeconds(10), policy.Trust.SpiffeDomains[0].RefreshInterval);
        Assert.Equal(TimeSpan.FromHours(24), policy.Trust.SpiffeDomains[1].RefreshInterval);
        Assert.Equal(TimeSpan.FromSeconds(30), policy.Agents[0].Phases[TaskPhase.Planning].MaxTtl);
        Assert.Equal(TimeSpan.FromHours(1), policy.Agents[0].Phases[TaskPhase.Execution].MaxTtl);
    }

    [Fact]
    public void An_empty_oidc_list_left_for_later_is_allowed()
    {
        PolicyAssert.Loaded(_dir.Load("""
            version: 1
            trust:
              spiffe:
                - trust_domain: example.org
                  x509_bundle_file: bundles/example.org.pem
              oidc:
                # - issuer: https://issuer.example
            agents:
              - name: a
                match: spiffe://example.org/ci/**
                phases:
                  planning: { scopes: [s], audiences: ["https://api"], max_ttl: 1m }
            """));
    }

    [Fact]
    public void A_policy_error_prints_as_file_line_column_message()
    {
        var error = new PolicyError("/etc/broker/policy.yaml", 12, 7, "unknown key 'scope'");

        Assert.Equal("/etc/broker/policy.yaml:12:7: unknown key 'scope'", error.ToString());
    }

    [Fact]
    public void A_missing_file_is_an_error_naming_the_file()
    {
        var result = PolicyLoader.LoadFile(Path.Combine(_dir.Path, "nope.yaml"));

        var error = Assert.Single(result.Errors);
        Assert.Null(result.Policy);
        Assert.Equal(Path.Combine(_dir.Path, "nope.yaml"), error.File);
        Assert.Contains("does not exist", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_load_exception_lists_every_error()
    {
        var errors = new[] { new PolicyError("p.yaml", 1, 1, "first"), new PolicyError("p.yaml", 4, 3, "second") };

        var ex = new PolicyLoadException("p.yaml", errors);

        Assert.Contains("p.yaml:1:1: first", ex.Message, StringComparison.Ordinal);
        Assert.Contains("p.yaml:4:3: second", ex.Message, StringComparison.Ordinal);
        Assert.Same(errors, ex.Errors);
    }
}
