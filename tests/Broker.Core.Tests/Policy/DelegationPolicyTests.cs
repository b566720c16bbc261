using Broker.Core.Policy;

namespace Broker.Core.Tests.Policy;

/// <summary>Per agent rule: delegate_to (sub-agent patterns) and max_delegation_depth, checked at load with their line.</summary>
public sealed class DelegationPolicyTests : IDisposable
{
    private readonly PolicyTestDirectory _dir = new();

    public DelegationPolicyTests() => _dir.Touch("bundles/example.org.jwks");

    public void Dispose() => _dir.Dispose();

    // The delegation keys start on line 9.
    private static string Policy(string delegation) => PolicyTestDirectory.OneRulePolicy(delegation);

    private PolicyLoadResult Load(string yaml) => PolicyLoader.LoadFile(_dir.WritePolicy(yaml));

    [Fact]
    public void Delegation_loads_and_absent_means_none()
    {
        var with = PolicyAssert.Loaded(Load(Policy("    delegate_to: [spiffe://example.org/sub/*]\n    max_delegation_depth: 2")));
        var without = PolicyAssert.Loaded(Load(Policy("")));

        Assert.Equal(2, with.Agents[0].MaxDelegationDepth);
        Assert.True(with.Agents[0].MayDelegateTo("spiffe://example.org/sub/a"));
        Assert.False(with.Agents[0].MayDelegateTo("spiffe://example.org/agents/a"));
        Assert.Equal(0, without.Agents[0].MaxDelegationDepth);
        Assert.False(without.Agents[0].MayDelegateTo("spiffe://example.org/sub/a"));
    }

    [Theory]
    [InlineData("    delegate_to: [spiffe://example.org/sub/*]", 9, "delegate_to needs max_delegation_depth of 1 or more")]
    [InlineData("    delegate_to: [spiffe://example.org/sub/*]\n    max_delegation_depth: 0", 10, "delegate_to needs max_delegation_depth of 1 or more")]
    [InlineData("    max_delegation_depth: 1", 9, "max_delegation_depth needs delegate_to")]
    [InlineData("    delegate_to: [spiffe://example.org/sub/*]\n    max_delegation_depth: 9", 10, "must be between 0 and 8")]
    [InlineData("    delegate_to: [spiffe://example.org/sub/*]\n    max_delegation_depth: two", 10, "must be a whole number")]
    [InlineData("    delegate_to: [spiffe://other.org/sub/*]\n    max_delegation_depth: 1", 9, "which is not declared under trust.spiffe")]
    [InlineData("    delegate_to: []\n    max_delegation_depth: 1", 9, "list at least one sub-agent pattern")]
    [InlineData("    delegate_to: spiffe://example.org/sub/*\n    max_delegation_depth: 1", 9, "must be a list")]
    [InlineData("    delegation_depth: 1", 9, "delegation_depth")]
    public void A_delegation_setting_that_cannot_work_is_an_error_at_its_line(string delegation, int line, string message)
    {
        var result = Load(Policy(delegation));

        Assert.Null(result.Policy);
        var error = Assert.Single(result.Errors);
        Assert.Equal(line, error.Line);
        Assert.Contains(message, error.Message);
    }
}
