using Broker.Core.State;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Broker.V1;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.DependencyInjection;

namespace Broker.Server.Tests.Issuance;

/// <summary>
/// Node A moves a task into execution while node B keeps issuing for planning, the phase B saw
/// last (docs/design/issuance-state.md, "Phase change at A while B issues for the old phase").
/// Every issuance reads the task's phase in its own script, so B never mints for a phase the
/// task has left without moving it back, and every move revokes the phase it leaves: once the
/// race is over, no token of the phase the task is not in is accepted at either node.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class PhaseRaceTests(RedisFixture redis) : IAsyncLifetime
{
    private const string Task = "contested-phase";
    private readonly string _prefix = RedisFixture.NewPrefix();
    private BrokerScenario _a = null!;
    private BrokerTestHost _bHost = null!;
    private GrpcChannel _bChannel = null!;

    public async Task InitializeAsync()
    {
        _a = await BrokerScenario.StartAsync(redis.Server.Configuration, redisPrefix: _prefix);
        _bHost = await _a.StartPeerAsync(redis.Server.Configuration, _prefix);
        _bChannel = _bHost.CreateChannel();
    }

    public async Task DisposeAsync()
    {
        _bChannel.Dispose();
        await _bHost.DisposeAsync();
        await _a.DisposeAsync();
    }

    [Fact]
    public async Task A_phase_moved_at_one_node_while_the_other_issues_for_the_old_phase_leaves_no_old_phase_token_accepted()
    {
        var b = new CredentialService.CredentialServiceClient(_bChannel);
        var tokens = new List<(Phase Phase, string Token)>();
        var first = await b.IssueCredentialAsync(_a.Request(task: Task, phase: Phase.Planning));
        tokens.Add((Phase.Planning, first.AccessToken));

        async Task<List<(Phase, string)>> IssueAsync(CredentialService.CredentialServiceClient node, Phase phase, string scope, int calls)
        {
            var issued = new List<(Phase, string)>();
            for (var i = 0; i < calls; i++)
            {
                issued.Add((phase, (await node.IssueCredentialAsync(_a.Request(task: Task, phase: phase, scopes: scope))).AccessToken));
            }

            return issued;
        }

        var atB = IssueAsync(b, Phase.Planning, "tickets:read", 40);
        var atA = IssueAsync(_a.Client, Phase.Execution, "deploy:staging", 5);
        foreach (var issued in await System.Threading.Tasks.Task.WhenAll(atB, atA))
        {
            tokens.AddRange(issued);
        }

        var task = await _a.Host.Services.GetRequiredService<ICredentialStore>().GetTaskAsync(Task, default);
        Assert.NotNull(task);
        var current = task.Phase == Core.TaskPhase.Planning ? Phase.Planning : Phase.Execution;
        var left = tokens.Where(t => t.Phase != current).Select(t => t.Token).ToList();
        Assert.NotEmpty(left);

        var nodes = new[] { new RevocationService.RevocationServiceClient(_a.Channel), new RevocationService.RevocationServiceClient(_bChannel) };
        foreach (var node in nodes)
        {
            await Poll.UntilAsync(
                async () => (await InactiveAsync(node, left)) == left.Count,
                $"every {(current == Phase.Planning ? "execution" : "planning")} token inactive once the task is in {current}");
        }

        // Each node still issues in the task's phase.
        Assert.NotEmpty((await b.IssueCredentialAsync(_a.Request(task: Task, phase: current, scopes: "repo:read"))).AccessToken);
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
