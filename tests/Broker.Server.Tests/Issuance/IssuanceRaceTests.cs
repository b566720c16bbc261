using Broker.Client;
using Broker.Core.State;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Broker.V1;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.DependencyInjection;

namespace Broker.Server.Tests.Issuance;

/// <summary>
/// The races of docs/design/issuance-state.md, through two nodes sharing one Redis: two
/// workloads claiming one new task id, and a phase move at one node while the other issues
/// for the phase it saw last.
/// </summary>
[Collection(RedisCollection.Name)]
public class IssuanceRaceTests(RedisFixture redis) : IAsyncLifetime
{
    private const string PhaseTask = "contested-phase";
    private TwoNodes _nodes = null!;

    private BrokerScenario A => _nodes.A;

    private GrpcChannel BChannel => _nodes.BChannel;

    /// <summary>Settings both nodes run with (none: the defaults).</summary>
    protected virtual IReadOnlyDictionary<string, string?>? Settings => null;

    public async Task InitializeAsync() => _nodes = await TwoNodes.StartAsync(redis, Settings);

    public async Task DisposeAsync() => await _nodes.DisposeAsync();

    /// <summary>Exactly one workload owns the task id; the other is refused every time.</summary>
    [Fact]
    public async Task Exactly_one_workload_wins_a_task_id_claimed_at_two_nodes_at_once()
    {
        var nodes = new[] { A.Client, new CredentialService.CredentialServiceClient(BChannel) };
        var workloads = new[] { "/agents/first", "/agents/second" };
        for (var round = 0; round < 5; round++)
        {
            var task = $"contested-{round}";
            var calls = Enumerable.Range(0, 8).Select(async i =>
            {
                var workload = workloads[i % 2];
                var node = nodes[(i / 2) % 2];
                try
                {
                    await node.IssueCredentialAsync(A.Request(svid: A.Svid(workload), task: task));
                    return (workload, Reason: "OK");
                }
                catch (RpcException ex)
                {
                    return (workload, BrokerRefusal.From(ex).Reason);
                }
            }).ToArray();
            var results = await Task.WhenAll(calls);

            var winners = results.Where(r => r.Reason == "OK").Select(r => r.workload).Distinct().ToList();
            var winner = Assert.Single(winners);
            Assert.All(results.Where(r => r.workload != winner), r => Assert.Equal("TASK_NOT_OWNED", r.Reason));
            Assert.All(results.Where(r => r.workload == winner), r => Assert.Equal("OK", r.Reason));
        }
    }

    /// <summary>
    /// Every issuance reads the task's phase in its own script, so the node issuing for planning
    /// never mints for a phase the task has left without moving it back, and every move revokes
    /// the phase it leaves: once the race is over, no token of the phase the task is not in is
    /// accepted at either node.
    /// </summary>
    [Fact]
    public async Task A_phase_moved_at_one_node_while_the_other_issues_for_the_old_phase_leaves_no_old_phase_token_accepted()
    {
        var b = new CredentialService.CredentialServiceClient(BChannel);
        var tokens = new List<(Phase Phase, string Token)>();
        var first = await b.IssueCredentialAsync(A.Request(task: PhaseTask, phase: Phase.Planning));
        tokens.Add((Phase.Planning, first.AccessToken));

        async Task<List<(Phase, string)>> IssueAsync(CredentialService.CredentialServiceClient node, Phase phase, string scope, int calls)
        {
            var issued = new List<(Phase, string)>();
            for (var i = 0; i < calls; i++)
            {
                issued.Add((phase, (await node.IssueCredentialAsync(A.Request(task: PhaseTask, phase: phase, scopes: scope))).AccessToken));
            }

            return issued;
        }

        var atB = IssueAsync(b, Phase.Planning, "tickets:read", 40);
        var atA = IssueAsync(A.Client, Phase.Execution, "deploy:staging", 5);
        foreach (var issued in await System.Threading.Tasks.Task.WhenAll(atB, atA))
        {
            tokens.AddRange(issued);
        }

        var task = await A.Host.Services.GetRequiredService<ICredentialStore>().GetTaskAsync(PhaseTask, default);
        Assert.NotNull(task);
        var current = task.Phase == Core.TaskPhase.Planning ? Phase.Planning : Phase.Execution;
        var left = tokens.Where(t => t.Phase != current).Select(t => t.Token).ToList();
        Assert.NotEmpty(left);

        var nodes = new[] { new RevocationService.RevocationServiceClient(A.Channel), new RevocationService.RevocationServiceClient(BChannel) };
        foreach (var node in nodes)
        {
            await Poll.UntilAsync(
                async () => (await InactiveAsync(node, left)) == left.Count,
                $"every {(current == Phase.Planning ? "execution" : "planning")} token inactive once the task is in {current}");
        }

        // Each node still issues in the task's phase.
        Assert.NotEmpty((await b.IssueCredentialAsync(A.Request(task: PhaseTask, phase: current, scopes: "repo:read"))).AccessToken);
    }

    private static async Task<int> InactiveAsync(RevocationService.RevocationServiceClient node, IEnumerable<string> tokens)
    {
        var inactive = 0;
        foreach (var token in tokens)
        {
            try
            {
                if (!(await node.IntrospectAsync(new IntrospectRequest { Token = token })).Active)
                {
                    inactive++;
                }
            }
            catch (RpcException)
            {
                // A node not yet current answers UNAVAILABLE: not inactive yet.
            }
        }

        return inactive;
    }
}
