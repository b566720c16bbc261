using Broker.Client;
using Broker.Server.Tests.Infrastructure;
using Broker.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Broker.Server.Tests.Revocation;

/// <summary>
/// Two broker nodes sharing one real Redis that stops, or loses its data (what a restart without
/// persistence leaves): calls fail closed within the staleness window, nothing is issued between
/// the loss and <c>restore-epoch</c>, and what was ended or revoked before the loss stays refused.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class RedisLossTests(RedisFixture redis) : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);
    private TwoNodes _nodes = null!;

    private BrokerScenario A => _nodes.A;

    private GrpcChannel BChannel => _nodes.BChannel;

    private CredentialService.CredentialServiceClient B => _nodes.B;

    public async Task InitializeAsync() => _nodes = await TwoNodes.StartAsync(redis);

    public async Task DisposeAsync() => await _nodes.DisposeAsync();

    /// <summary>
    /// Both nodes keep issuing (tasks they know and new ones) while Redis is emptied. Every call
    /// that starts after the emptying returned is refused at both nodes, including the first ones,
    /// before either node's revocation feed has had a chance to notice.
    /// </summary>
    [Fact]
    public async Task Issuance_racing_an_emptied_redis_is_refused_at_both_nodes_from_the_first_call()
    {
        var nodes = new[] { A.Client, B };
        foreach (var node in nodes)
        {
            await node.IssueCredentialAsync(A.Request(task: "known"));
        }

        using var stop = new CancellationTokenSource();
        var emptiedAt = long.MaxValue;
        var issuedAfter = 0;
        var issuedBefore = 0;
        var refusedAfter = new List<string>();
        var callers = Enumerable.Range(0, 4).Select(i => Task.Run(async () =>
        {
            var node = nodes[i % 2];
            for (var n = 0; !stop.IsCancellationRequested; n++)
            {
                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                var task = n % 2 == 0 ? "known" : $"new-{i}-{n}";
                try
                {
                    await node.IssueCredentialAsync(A.Request(task: task));
                    Interlocked.Increment(ref started > Interlocked.Read(ref emptiedAt) ? ref issuedAfter : ref issuedBefore);
                }
                catch (RpcException ex) when (started > Interlocked.Read(ref emptiedAt))
                {
                    lock (refusedAfter)
                    {
                        refusedAfter.Add(ex.StatusCode + "/" + BrokerRefusal.From(ex).Reason);
                    }
                }
                catch (RpcException)
                {
                    // Started before the loss: either answer is consistent with the state it was decided on.
                }
            }
        })).ToArray();

        // The callers are running against the intact state before it is lost.
        await EventuallyAsync(() => Task.FromResult(Volatile.Read(ref issuedBefore) >= 8));
        await EmptyRedisAsync();
        Interlocked.Exchange(ref emptiedAt, System.Diagnostics.Stopwatch.GetTimestamp());
        await EventuallyAsync(() => Task.FromResult(Volatile.Read(ref issuedAfter) > 0 || refusedAfter.Count >= 40));
        await stop.CancelAsync();
        await Task.WhenAll(callers);

        Assert.Equal(0, issuedAfter);
        Assert.All(refusedAfter, r => Assert.StartsWith("Unavailable/", r, StringComparison.Ordinal));
        Assert.Contains("Unavailable/REVOCATION_STATE_LOST", refusedAfter);
    }

    /// <summary>
    /// The empty Redis forgot the tasks' ended marks; the restore carries the revocations the node
    /// knew into the new epoch, so an ended task and a revoked task are still refused at both nodes.
    /// </summary>
    [Fact]
    public async Task Tasks_ended_or_revoked_before_the_loss_stay_refused_after_the_restore()
    {
        await A.Client.IssueCredentialAsync(A.Request(task: "ended-before"));
        await A.Client.IssueCredentialAsync(A.Request(task: "revoked-before"));
        await A.Client.EndTaskAsync(new Broker.V1.EndTaskRequest { TaskId = "ended-before", Attestation = new AttestationProof { JwtSvid = A.Svid() } });
        await A.RevokeAsync("contain", new Broker.V1.RevocationSelector { TaskId = "revoked-before" });

        await EmptyRedisAsync();
        await EventuallyAsync(async () => (await RefusalAsync(A.Client, "probe"))?.Reason == "REVOCATION_STATE_LOST", () => "A never refused REVOCATION_STATE_LOST");
        await A.Admin.RestoreRevocationEpochAsync(new RestoreRevocationEpochRequest { Reason = "redis lost its data" }, A.As("alice", "responder"));
        string? last = null;
        await EventuallyAsync(async () => (last = (await RefusalAsync(B, "ended-before"))?.Reason) == "TASK_ENDED", () => "B answered " + (last ?? "OK"));

        foreach (var node in new[] { A.Client, B })
        {
            foreach (var task in new[] { "ended-before", "revoked-before" })
            {
                var refusal = await RefusalAsync(node, task);
                Assert.Equal(StatusCode.FailedPrecondition, refusal?.Status);
                Assert.Equal("TASK_ENDED", refusal?.Reason);
            }
        }

        await Task.Delay(1100); // tokens minted in the restore's own second are covered by its cut-off
        Assert.NotEmpty((await B.IssueCredentialAsync(A.Request(task: "after-restore"))).AccessToken);
    }

    /// <summary>
    /// With Redis stopped, the first issuance and the first revocation fail closed at once (a few
    /// hundred ms here), not after the Redis client's reconnect wait or its 5 s timeout (2-3 s here
    /// before, 5-6 s reported): a deadline of the documented 2 s staleness window turns a slow
    /// refusal into DEADLINE_EXCEEDED.
    /// </summary>
    [Fact]
    public async Task With_redis_stopped_issuance_and_revocation_are_refused_within_the_staleness_window()
    {
        await A.Client.IssueCredentialAsync(A.Request(task: "before-stop"));
        var deadline = TimeSpan.FromSeconds(2);
        await redis.Server.KillAsync();
        try
        {
            var issue = await Assert.ThrowsAsync<RpcException>(async () =>
                await A.Client.IssueCredentialAsync(A.Request(task: "before-stop"), deadline: DateTime.UtcNow + deadline));
            var issueAtB = await Assert.ThrowsAsync<RpcException>(async () =>
                await B.IssueCredentialAsync(A.Request(task: "new-while-stopped"), deadline: DateTime.UtcNow + deadline));
            var revokeCall = await Assert.ThrowsAsync<RpcException>(async () =>
                await new AdminService.AdminServiceClient(BChannel).RevokeAsync(
                    new RevokeRequest { Reason = "while stopped", Selectors = { new Broker.V1.RevocationSelector { TaskId = "before-stop" } } },
                    A.As("alice", "responder"),
                    deadline: DateTime.UtcNow + deadline));

            Assert.Equal(StatusCode.Unavailable, issue.StatusCode);
            Assert.Equal(StatusCode.Unavailable, issueAtB.StatusCode);
            Assert.Equal(StatusCode.Unavailable, revokeCall.StatusCode);
        }
        finally
        {
            await redis.Server.RestartAsync();
        }
    }

    private Task<BrokerRefusal?> RefusalAsync(CredentialService.CredentialServiceClient node, string task) => _nodes.RefusalAsync(node, task);

    private Task EmptyRedisAsync() => _nodes.EmptyRedisAsync();

    private static async Task EventuallyAsync(Func<Task<bool>> condition, Func<string>? explain = null)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (DateTime.UtcNow < deadline)
        {
            if (await condition())
            {
                return;
            }

            await Task.Delay(20);
        }

        Assert.Fail($"Condition not met within {Bound.TotalSeconds} s. {explain?.Invoke()}");
    }
}
