using Broker.Client;
using Broker.Server.Tests.Infrastructure;
using Broker.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Broker.Server.Tests.Issuance;

/// <summary>
/// Two workloads race, through two nodes sharing one Redis, to claim the same new task id:
/// exactly one owns it, and the other is refused every time (docs/design/issuance-state.md).
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class TaskClaimRaceTests(RedisFixture redis) : IAsyncLifetime
{
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
    public async Task Exactly_one_workload_wins_a_task_id_claimed_at_two_nodes_at_once()
    {
        var nodes = new[] { _a.Client, new CredentialService.CredentialServiceClient(_bChannel) };
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
                    await node.IssueCredentialAsync(_a.Request(svid: _a.Svid(workload), task: task));
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
}
