using Broker.Core.Policy;

namespace Broker.Core.Tests.Policy;

/// <summary>The per-agent default_phase: the phase of an OAuth request that names no task.</summary>
public sealed class DefaultPhasePolicyTests : IDisposable
{
    private readonly PolicyTestDirectory _dir = new();

    public DefaultPhasePolicyTests() => _dir.Touch("bundles/example.org.jwks");

    public void Dispose() => _dir.Dispose();

    // default_phase sits on line 9.
    private static string Policy(string defaultPhase) => PolicyTestDirectory.OneRulePolicy(defaultPhase);

    private PolicyLoadResult Load(string yaml) => PolicyLoader.LoadFile(_dir.WritePolicy(yaml));

    [Fact]
    public void Default_phase_loads_and_absent_means_none()
    {
        var with = PolicyAssert.Loaded(Load(Policy("    default_phase: planning")));
        var without = PolicyAssert.Loaded(Load(Policy("")));

        Assert.Equal(TaskPhase.Planning, with.Agents[0].DefaultPhase);
        Assert.Null(without.Agents[0].DefaultPhase);
    }

    [Theory]
    [InlineData("deployment", "'deployment' is not a phase")]
    [InlineData("execution", "'execution' is not among this agent's phases")]
    public void A_default_phase_that_is_no_phase_of_the_agent_is_an_error_at_its_line(string phase, string message)
    {
        var result = Load(Policy("    default_phase: " + phase));

        Assert.Null(result.Policy);
        var error = Assert.Single(result.Errors);
        Assert.Equal(9, error.Line);
        Assert.Contains(message, error.Message);
    }
}
