using Broker.Core.Policy;
using Broker.Core.Risk;

namespace Broker.Core.Tests.Policy;

public sealed class RiskPolicyTests : IDisposable
{
    private readonly PolicyTestDirectory _dir = new();

    public RiskPolicyTests() => _dir.Touch("bundles/example.org.jwks");

    public void Dispose() => _dir.Dispose();

    // Line 1 is "version: 1"; an extra planning key is line 14, an extra execution key line 18, and signals: starts on line 18.
    private static string Policy(string planningExtra = "", string executionExtra = "", string signals = "") => $"""
        version: 1
        trust:
          spiffe:
            - trust_domain: example.org
              jwt_bundle_file: bundles/example.org.jwks
        agents:
          - name: deployer
            match: spiffe://example.org/agents/*
            phases:
              planning:
                scopes: [repo:read]
                audiences: [https://api.example.org]
                max_ttl: 10m{planningExtra}
              execution:
                scopes: [deploy:write]
                audiences: [https://api.example.org]
                max_ttl: 5m{executionExtra}
        {signals}
        """;

    private PolicyLoadResult Load(string yaml) => PolicyLoader.LoadFile(_dir.WritePolicy(yaml));

    [Fact]
    public void Without_a_signals_section_no_risk_source_is_wired_and_phases_get_their_defaults()
    {
        var policy = PolicyAssert.Loaded(Load(Policy()));

        Assert.Null(policy.Signals);
        var phases = policy.Agents[0].Phases;
        Assert.Equal(RiskLevel.High, phases[TaskPhase.Planning].RiskCeiling);
        Assert.Equal(UnknownRiskStance.Allow, phases[TaskPhase.Planning].OnUnknownRisk);
        Assert.Equal(RiskLevel.Medium, phases[TaskPhase.Execution].RiskCeiling);
        Assert.Equal(UnknownRiskStance.Deny, phases[TaskPhase.Execution].OnUnknownRisk);
    }

    [Fact]
    public void Phase_risk_keys_and_the_signals_section_load_into_the_model()
    {
        var policy = PolicyAssert.Loaded(Load(Policy(
            planningExtra: "\n        risk_ceiling: critical\n        on_unknown_risk: deny",
            executionExtra: "\n        risk_ceiling: low\n        on_unknown_risk: allow",
            signals: """
                signals:
                  sources: [spiffe://example.org/runtime-protection, "spiffe://example.org/detectors/*"]
                  containment: high
                  max_validity: 15m
                """)));

        var phases = policy.Agents[0].Phases;
        Assert.Equal(RiskLevel.Critical, phases[TaskPhase.Planning].RiskCeiling);
        Assert.Equal(UnknownRiskStance.Deny, phases[TaskPhase.Planning].OnUnknownRisk);
        Assert.Equal(RiskLevel.Low, phases[TaskPhase.Execution].RiskCeiling);
        Assert.Equal(UnknownRiskStance.Allow, phases[TaskPhase.Execution].OnUnknownRisk);
        Assert.NotNull(policy.Signals);
        Assert.Equal(RiskLevel.High, policy.Signals.Containment);
        Assert.Equal(TimeSpan.FromMinutes(15), policy.Signals.MaxValidity);
        Assert.True(policy.Signals.IsSource("spiffe://example.org/detectors/pi"));
        Assert.False(policy.Signals.IsSource("spiffe://example.org/agents/a"));
    }

    [Fact]
    public void Containment_defaults_to_critical_and_can_be_turned_off()
    {
        var defaulted = PolicyAssert.Loaded(Load(Policy(signals: "signals:\n  sources: [spiffe://example.org/rp]")));
        Assert.Equal(RiskLevel.Critical, defaulted.Signals!.Containment);
        Assert.Equal(SignalPolicy.DefaultMaxValidity, defaulted.Signals.MaxValidity);

        var off = PolicyAssert.Loaded(Load(Policy(signals: "signals:\n  sources: [spiffe://example.org/rp]\n  containment: off")));
        Assert.Null(off.Signals!.Containment);
    }

    [Fact]
    public void An_unknown_risk_level_is_an_error_on_its_line()
    {
        PolicyAssert.SingleError(Load(Policy(executionExtra: "\n        risk_ceiling: severe")), 18, "'severe' is not a risk level");
    }

    [Fact]
    public void A_stance_other_than_allow_or_deny_is_an_error_on_its_line()
    {
        PolicyAssert.SingleError(Load(Policy(planningExtra: "\n        on_unknown_risk: maybe")), 14, "must be allow or deny");
    }

    [Fact]
    public void Containment_none_is_refused_because_it_would_revoke_on_every_signal()
    {
        PolicyAssert.SingleError(Load(Policy(signals: "signals:\n  sources: [spiffe://example.org/rp]\n  containment: none")), 20, "would revoke on every signal");
    }

    [Fact]
    public void Signal_sources_must_be_listed_and_vouched_for_by_a_trust_source()
    {
        PolicyAssert.HasError(Load(Policy(signals: "signals:\n  sources: []")), 19, "list at least one");
        PolicyAssert.HasError(Load(Policy(signals: "signals:\n  sources: [spiffe://other.org/rp]")), 19, "not declared under trust.spiffe");
        PolicyAssert.HasError(Load(Policy(signals: "signals:\n  containment: high")), 19, "missing required key 'sources'");
    }

    [Fact]
    public void Unknown_keys_under_signals_are_errors()
    {
        PolicyAssert.HasError(Load(Policy(signals: "signals:\n  sources: [spiffe://example.org/rp]\n  contaiment: high")), 20, "contaiment");
    }

    [Fact]
    public void Signal_validity_is_bounded()
    {
        PolicyAssert.SingleError(Load(Policy(signals: "signals:\n  sources: [spiffe://example.org/rp]\n  max_validity: 48h")), 20, "out of range");
    }

    private const string SsfSignals = "signals:\n  sources: [spiffe://example.org/rp]\n  ssf:\n    issuer: https://risk.example.org\n";

    [Fact]
    public void An_ssf_transmitter_loads_with_its_keys_audience_and_max_age()
    {
        var policy = PolicyAssert.Loaded(Load(Policy(signals: SsfSignals + "    jwks_file: bundles/example.org.jwks\n    audience: https://broker.example.org\n    max_age: 2m")));

        var ssf = policy.Signals!.Ssf!;
        Assert.Equal("https://risk.example.org", ssf.Issuer);
        Assert.EndsWith("example.org.jwks", ssf.JwksFile, StringComparison.Ordinal);
        Assert.Null(ssf.JwksUri);
        Assert.Equal("https://broker.example.org", ssf.Audience);
        Assert.Equal(TimeSpan.FromMinutes(2), ssf.MaxAge);

        var byUrl = PolicyAssert.Loaded(Load(Policy(signals: SsfSignals + "    jwks_uri: https://risk.example.org/jwks")));
        Assert.Equal(new Uri("https://risk.example.org/jwks"), byUrl.Signals!.Ssf!.JwksUri);
        Assert.Null(byUrl.Signals.Ssf.Audience);
        Assert.Equal(SsfTransmitterPolicy.DefaultMaxAge, byUrl.Signals.Ssf.MaxAge);
    }

    [Fact]
    public void An_ssf_transmitter_needs_exactly_one_key_source()
    {
        PolicyAssert.SingleError(Load(Policy(signals: SsfSignals + "    jwks_file: bundles/example.org.jwks\n    jwks_uri: https://risk.example.org/jwks")), 23, "exactly one of jwks_file or jwks_uri");
        PolicyAssert.HasError(Load(Policy(signals: SsfSignals)), 21, "exactly one of jwks_file or jwks_uri");
    }
}
