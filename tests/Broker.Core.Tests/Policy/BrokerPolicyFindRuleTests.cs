using Broker.Core.Attestation;
using Broker.Core.Policy;

namespace Broker.Core.Tests.Policy;

public sealed class BrokerPolicyFindRuleTests : IDisposable
{
    private readonly PolicyTestDirectory _dir = new();

    public BrokerPolicyFindRuleTests() => _dir.Touch("td.jwks");

    public void Dispose() => _dir.Dispose();

    private BrokerPolicy Load() => PolicyAssert.Loaded(_dir.Load("""
        version: 1
        trust:
          spiffe:
            - trust_domain: example.org
              jwt_bundle_file: td.jwks
        agents:
          - name: deployer-canary
            match: spiffe://example.org/agents/deployer/canary
            phases:
              planning: { scopes: [repo:read], audiences: [https://api], max_ttl: 1m }
          - name: deployer
            match: spiffe://example.org/agents/deployer/*
            phases:
              planning: { scopes: [repo:read, tickets:read], audiences: [https://api], max_ttl: 10m }
          - name: everything-else
            match: spiffe://example.org/**
            phases:
              planning: { scopes: [status:read], audiences: [https://api], max_ttl: 1m }
        """));

    [Fact]
    public void The_first_matching_rule_in_file_order_wins()
    {
        var policy = Load();

        Assert.Equal("deployer-canary", policy.FindRule(Spiffe("spiffe://example.org/agents/deployer/canary"))!.Name);
        Assert.Equal("deployer", policy.FindRule(Spiffe("spiffe://example.org/agents/deployer/eu-1"))!.Name);
        Assert.Equal("everything-else", policy.FindRule(Spiffe("spiffe://example.org/agents/deployer/eu-1/x"))!.Name);
        Assert.Equal("everything-else", policy.FindRule(Spiffe("spiffe://example.org/other"))!.Name);
    }

    [Theory]
    [InlineData("spiffe://example.org")]
    [InlineData("spiffe://other.org/agents/deployer/eu-1")]
    [InlineData("")]
    public void An_id_no_rule_matches_finds_nothing(string workloadId) => Assert.Null(Load().FindRule(Spiffe(workloadId)));

    [Fact]
    public void A_spiffe_rule_never_matches_an_identity_an_oidc_issuer_vouched_for()
    {
        // Should an OIDC subject ever map to a string that reads as a SPIFFE ID, the kind of
        // trust that proved it still decides: only SPIFFE-proven identities meet spiffe:// rules.
        var policy = Load();
        var id = "spiffe://example.org/agents/deployer/eu-1";

        Assert.Null(policy.FindRule(new WorkloadIdentity(id, AttestationKind.OidcToken, "https://issuer.example", DateTimeOffset.MaxValue)));
        Assert.Equal("deployer", policy.FindRule(new WorkloadIdentity(id, AttestationKind.X509Svid, "example.org", DateTimeOffset.MaxValue))!.Name);
    }

    private static WorkloadIdentity Spiffe(string workloadId) => new(workloadId, AttestationKind.JwtSvid, "example.org", DateTimeOffset.MaxValue);
}
