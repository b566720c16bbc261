using Broker.Core.Policy;

namespace Broker.Core.Tests.Policy;

public sealed class ApprovalPolicyTests : IDisposable
{
    private readonly PolicyTestDirectory _dir = new();

    public ApprovalPolicyTests() => _dir.Touch("bundles/example.org.jwks");

    public void Dispose() => _dir.Dispose();

    // Line 1 is "version: 1"; owner sits on line 9 and gated_scopes: starts on line 15.
    private static string Policy(string gates, string owner = "olga") => $"""
        version: 1
        trust:
          spiffe:
            - trust_domain: example.org
              jwt_bundle_file: bundles/example.org.jwks
        agents:
          - name: deployer
            match: spiffe://example.org/agents/*
            owner: {owner}
            phases:
              execution:
                scopes: [repo:read, deploy:prod, db:drop]
                audiences: [https://api.example.org]
                max_ttl: 5m
                gated_scopes:
        {gates}
        """;

    private PolicyLoadResult Load(string yaml) => PolicyLoader.LoadFile(_dir.WritePolicy(yaml));

    [Fact]
    public void Gated_scopes_load_with_their_defaults_and_the_owner()
    {
        var policy = PolicyAssert.Loaded(Load(Policy("""
                      - scopes: [deploy:prod]
                        approvers: [release-managers, sre]
                      - scopes: [db:drop]
                        approvers: [dba]
                        quorum: 2
                        validity: 1h
                        require_justification: true
            """)));

        var rule = policy.Agents[0];
        Assert.Equal("olga", rule.Owner);
        var gates = rule.Phases[TaskPhase.Execution].Gates!;
        Assert.Equal(2, gates.Count);
        Assert.Equal(1, gates[0].Quorum);
        Assert.Equal(TimeSpan.FromMinutes(15), gates[0].Validity);
        Assert.False(gates[0].RequireJustification);
        Assert.Contains("sre", gates[0].Approvers);
        Assert.Equal(2, gates[1].Quorum);
        Assert.Equal(TimeSpan.FromHours(1), gates[1].Validity);
        Assert.True(gates[1].RequireJustification);
    }

    [Fact]
    public void A_gate_on_a_scope_the_phase_does_not_allow_is_an_error()
    {
        PolicyAssert.HasError(Load(Policy("""
                      - scopes: [payments:write]
                        approvers: [approver]
            """)), 16, "not among the phase's scopes");
    }

    [Fact]
    public void A_scope_gated_twice_is_an_error()
    {
        PolicyAssert.HasError(Load(Policy("""
                      - scopes: [deploy:prod]
                        approvers: [a]
                      - scopes: [deploy:prod]
                        approvers: [b]
            """)), 18, "already gated");
    }

    [Theory]
    [InlineData("quorum: 0", "quorum is the number of distinct approvers")]
    [InlineData("quorum: 11", "quorum is the number of distinct approvers")]
    [InlineData("validity: 25h", "validity")]
    [InlineData("require_justification: maybe", "true or false")]
    [InlineData("approver: [x]", "approver")]
    public void Bad_gate_keys_are_errors_on_their_line(string key, string fragment)
    {
        PolicyAssert.HasError(Load(Policy($"""
                      - scopes: [deploy:prod]
                        approvers: [approver]
                        {key}
            """)), 18, fragment);
    }

    [Fact]
    public void A_gate_needs_approvers_and_an_owner_has_no_spaces()
    {
        PolicyAssert.HasError(Load(Policy("""
                      - scopes: [deploy:prod]
            """)), 16, "approvers");
        PolicyAssert.HasError(Load(Policy("""
                      - scopes: [deploy:prod]
                        approvers: [approver]
            """, owner: "\"olga smith\"")), 9, "no spaces");
    }
}
