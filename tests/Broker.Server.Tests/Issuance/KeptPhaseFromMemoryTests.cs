using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Broker.V1;

namespace Broker.Server.Tests.Issuance;

/// <summary>
/// <c>Broker:Issuance:RepeatFromMemory</c> on two nodes for a phase that keeps its tokens when
/// the task moves on (<c>keep_tokens_on_exit</c>): no revocation says the task left it, so the
/// mover announces the move on the revocation log, and the other node stops serving the phase
/// from memory, while the phase's tokens stay valid.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class KeptPhaseFromMemoryTests(RedisFixture redis) : IAsyncLifetime
{
    private TwoNodes _nodes = null!;

    public async Task InitializeAsync() => _nodes = await TwoNodes.StartAsync(
        redis,
        new Dictionary<string, string?> { ["Broker:Issuance:RepeatFromMemory"] = "true" },
        (jwks, bundle) => KeepPlanningTokens(BrokerScenario.Policy(jwks, bundle)));

    public async Task DisposeAsync() => await _nodes.DisposeAsync();

    [Fact]
    public async Task A_move_out_of_a_kept_phase_at_one_node_stops_the_other_serving_it_from_memory_and_revokes_nothing()
    {
        var a = _nodes.A;
        var planning = await _nodes.B.IssueCredentialAsync(a.Request(task: "kept"));
        var fromMemory = await FromMemoryAtBAsync();
        await _nodes.B.IssueCredentialAsync(a.Request(task: "kept"));
        Assert.Equal(fromMemory + 1, await FromMemoryAtBAsync());

        await a.Client.IssueCredentialAsync(a.Request(task: "kept", phase: Phase.Execution, scopes: "deploy:staging"));

        // Until B reads the move (milliseconds, through pub/sub), it may still answer from memory.
        await Poll.UntilAsync(
            async () =>
            {
                var before = await FromMemoryAtBAsync();
                await _nodes.B.IssueCredentialAsync(a.Request(task: "kept"));
                return await FromMemoryAtBAsync() == before;
            },
            "node B asking Redis about the kept phase once the task moved on at node A",
            TimeSpan.FromSeconds(5));

        var introspection = new RevocationService.RevocationServiceClient(a.Channel);
        Assert.True((await introspection.IntrospectAsync(new IntrospectRequest { Token = planning.AccessToken })).Active, "the kept phase's token stays valid");
    }

    // The planning phase's settings end with "max_ttl: 10m"; the new key goes under it, equally indented.
    private static string KeepPlanningTokens(string policy)
    {
        var line = policy.Split('\n').Single(l => l.TrimStart().StartsWith("max_ttl: 10m", StringComparison.Ordinal));
        var indent = line[..(line.Length - line.TrimStart().Length)];
        return policy.Replace(line, line + "\n" + indent + "keep_tokens_on_exit: true", StringComparison.Ordinal);
    }

    /// <summary>Node B's <c>broker_issuance_from_memory_total</c>, from its Prometheus endpoint.</summary>
    private async Task<double> FromMemoryAtBAsync()
    {
        using var http = new HttpClient();
        var scrape = PrometheusText.Parse(await http.GetStringAsync(new Uri(_nodes.BHost.HttpAddress + "/metrics")));
        return PrometheusText.Sum(scrape, "broker_issuance_from_memory_total") ?? 0;
    }
}
