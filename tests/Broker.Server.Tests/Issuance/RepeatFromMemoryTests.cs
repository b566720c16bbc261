using Broker.Client;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Broker.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Broker.Server.Tests.Issuance;

/// <summary>
/// <c>Broker:Issuance:RepeatFromMemory</c> on two nodes sharing one real Redis: a repeat issuance
/// runs no issuance script, what the feed carries still reaches a node deciding from memory, and
/// the weaker promise it makes when Redis loses its data (docs/design/issuance-state.md) holds:
/// new tasks are refused from the first call, and every token issued after the loss is revoked
/// by the restore.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class RepeatFromMemoryTests(RedisFixture redis) : IAsyncLifetime
{
    private static readonly Dictionary<string, string?> FromMemory = new() { ["Broker:Issuance:RepeatFromMemory"] = "true" };
    private TwoNodes _nodes = null!;

    private BrokerScenario A => _nodes.A;

    private GrpcChannel BChannel => _nodes.BChannel;

    private CredentialService.CredentialServiceClient B => _nodes.B;

    public async Task InitializeAsync() => _nodes = await TwoNodes.StartAsync(redis, FromMemory);

    public async Task DisposeAsync() => await _nodes.DisposeAsync();

    [Fact]
    public async Task A_repeat_issuance_runs_no_issuance_script_but_a_new_task_or_phase_does()
    {
        await A.Client.IssueCredentialAsync(A.Request(task: "refreshing"));
        var before = await IssuanceReadsAsync();
        var fromMemoryBefore = await FromMemoryCountAsync();
        for (var i = 0; i < 20; i++)
        {
            Assert.NotEmpty((await A.Client.IssueCredentialAsync(A.Request(task: "refreshing"))).AccessToken);
        }

        Assert.Equal(before, await IssuanceReadsAsync());
        Assert.Equal(fromMemoryBefore + 20, await FromMemoryCountAsync());

        await A.Client.IssueCredentialAsync(A.Request(task: "another"));
        Assert.True(await IssuanceReadsAsync() > before, "a new task is claimed in Redis");
        var moved = await IssuanceReadsAsync();
        await A.Client.IssueCredentialAsync(A.Request(task: "refreshing", phase: Phase.Execution, scopes: "deploy:staging"));
        Assert.True(await IssuanceReadsAsync() > moved, "a phase move is checked and recorded in Redis");
    }

    /// <summary>
    /// A lost Redis connection (as at a failover, which can lose the last writes, a task's claim
    /// among them) makes the node confirm a remembered task in Redis again instead of trusting
    /// what it read before.
    /// </summary>
    [Fact]
    public async Task After_a_lost_redis_connection_a_remembered_task_is_confirmed_in_redis_again()
    {
        await A.Client.IssueCredentialAsync(A.Request(task: "interrupted"));
        var fromMemory = await FromMemoryCountAsync();
        await A.Client.IssueCredentialAsync(A.Request(task: "interrupted"));
        Assert.Equal(fromMemory + 1, await FromMemoryCountAsync());
        var reads = await IssuanceReadsAsync();

        await using (var admin = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.Server.Configuration + ",allowAdmin=true"))
        {
            await admin.GetDatabase().ExecuteAsync("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes");
        }

        await Poll.UntilAsync(
            async () =>
            {
                try
                {
                    await A.Client.IssueCredentialAsync(A.Request(task: "interrupted"));
                }
                catch (RpcException ex) when (BrokerRefusal.From(ex).Reason is "STATE_UNAVAILABLE" or "REVOCATION_STATE_UNKNOWN")
                {
                    // The node is reconnecting.
                    return false;
                }

                return await IssuanceReadsAsync() > reads;
            },
            "node A asking Redis about the task again after its connection was lost",
            TimeSpan.FromSeconds(10));
    }

    /// <summary>The task's end reaches the other node through the feed, so its memory never outlives the end.</summary>
    [Fact]
    public async Task A_task_ended_at_one_node_is_refused_at_the_other_that_remembers_it()
    {
        await B.IssueCredentialAsync(A.Request(task: "ending"));
        await B.IssueCredentialAsync(A.Request(task: "ending"));
        await A.Client.EndTaskAsync(new EndTaskRequest { TaskId = "ending", Attestation = new AttestationProof { JwtSvid = A.Svid() } });

        await Poll.UntilAsync(async () => (await RefusalAsync(B, "ending"))?.Reason == "TASK_ENDED", "B refuses the ended task", TimeSpan.FromSeconds(5));
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal("TASK_ENDED", (await RefusalAsync(B, "ending"))?.Reason);
        }
    }

    /// <summary>
    /// Redis emptied while both nodes remember a task: a new task is refused from the first call
    /// (it needs the script, which finds no epoch), the known one is refused once the feed's next
    /// read notices, and every token either node issued after the loss is inactive at both nodes
    /// once an operator restores the epoch.
    /// </summary>
    [Fact]
    public async Task After_redis_is_emptied_new_tasks_are_refused_at_once_and_the_restore_revokes_what_memory_issued()
    {
        var nodes = new[] { A.Client, B };
        foreach (var node in nodes)
        {
            await node.IssueCredentialAsync(A.Request(task: "known"));
            await node.IssueCredentialAsync(A.Request(task: "known"));
        }

        await EmptyRedisAsync();
        foreach (var node in nodes)
        {
            Assert.Equal("REVOCATION_STATE_LOST", (await RefusalAsync(node, $"new-after-loss-{Guid.NewGuid():N}"))?.Reason);
        }

        var issuedAfter = new List<string>();
        foreach (var node in nodes)
        {
            await Poll.UntilAsync(
                async () =>
                {
                    try
                    {
                        issuedAfter.Add((await node.IssueCredentialAsync(A.Request(task: "known"))).AccessToken);
                        return false;
                    }
                    catch (RpcException ex)
                    {
                        return BrokerRefusal.From(ex).Reason == "REVOCATION_STATE_LOST";
                    }
                },
                "the known task refused once the feed notices the loss",
                TimeSpan.FromSeconds(5));
        }

        await A.Admin.RestoreRevocationEpochAsync(new RestoreRevocationEpochRequest { Reason = "redis lost its data" }, A.As("alice", "responder"));
        var introspection = new[] { new RevocationService.RevocationServiceClient(A.Channel), new RevocationService.RevocationServiceClient(BChannel) };
        foreach (var node in introspection)
        {
            await Poll.UntilAsync(
                async () =>
                {
                    foreach (var token in issuedAfter)
                    {
                        try
                        {
                            if ((await node.IntrospectAsync(new IntrospectRequest { Token = token })).Active)
                            {
                                return false;
                            }
                        }
                        catch (RpcException)
                        {
                            return false;
                        }
                    }

                    return true;
                },
                $"all {issuedAfter.Count} tokens issued from memory after the loss inactive");
        }
    }

    private Task<BrokerRefusal?> RefusalAsync(CredentialService.CredentialServiceClient node, string task) => _nodes.RefusalAsync(node, task);

    private Task EmptyRedisAsync() => _nodes.EmptyRedisAsync();

    // Only the issuance scripts call PEXPIRETIME (the task's retention), so its count is the
    // number of issuances Redis was asked about.
    /// <summary>Node A's <c>broker_issuance_from_memory_total</c>, from its Prometheus endpoint.</summary>
    private async Task<double> FromMemoryCountAsync()
    {
        using var http = new HttpClient();
        var scrape = PrometheusText.Parse(await http.GetStringAsync(new Uri(A.Host.HttpAddress + "/metrics")));
        return PrometheusText.Sum(scrape, "broker_issuance_from_memory_total") ?? 0;
    }

    private async Task<long> IssuanceReadsAsync()
    {
        await using var admin = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.Server.Configuration + ",allowAdmin=true");
        var info = await admin.GetServer(admin.GetEndPoints()[0]).InfoAsync("commandstats");
        var line = info.SelectMany(g => g).FirstOrDefault(kv => kv.Key == "cmdstat_pexpiretime").Value;
        return line is null ? 0 : long.Parse(line.Split(',')[0]["calls=".Length..], System.Globalization.CultureInfo.InvariantCulture);
    }
}
