using System.Net;
using Broker.Client;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Broker.V1;
using Grpc.Core;
using static Broker.Server.Tests.Failover.SentinelFailoverWorkload;

namespace Broker.Server.Tests.Failover;

/// <summary>
/// Sentinel promotes a replica that lacks the revocation epoch, and every broker node and the SDK
/// resource server fail closed until a responder restores it.
/// <para>
/// What it simulates: the primary's host dies and, at the same moment, the replica Sentinel will
/// promote restarts from a lost disk (empty, with a new replication id), before it could sync
/// again. Construction, with real processes: a primary and two replicas, the first preferred for
/// promotion (<c>replica-priority 1</c>, the second the default 100) so that Sentinel's choice is
/// deterministic. The primary is SIGKILLed; then the preferred replica is SIGKILLed, its data
/// files are deleted and it is started again (down for well under Sentinel's 1 s
/// <c>down-after</c>, so still eligible), empty and unable to reach its dead primary. Sentinel
/// promotes it (the test fails if it promotes the other) and points the second replica at it,
/// which has to resync in full and so loses its copy too. The old primary stays down.
/// </para>
/// The single-Redis <c>REVOCATION_STATE_LOST</c> test (RevocationClusterTests) covers the
/// refusals in detail; this one covers what is specific to a failover: nodes connected through
/// Sentinel follow the promotion onto the empty node, notice the missing epoch there without a
/// restart, the resource server on a node's stream fails closed, and the restore (which must
/// reach a replica, <c>Broker:RevocationMinReplicas=1</c>) works on the new primary.
/// </summary>
[Collection(SentinelFailoverCollection.Name)]
public sealed class SentinelEpochLostTests
{
    private const string Prefix = "epoch-lost:";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Failover_onto_a_replica_without_the_epoch_fails_closed_everywhere_until_a_responder_restores_it()
    {
        using var floor = new ThreadPoolFloor();
        await using var redis = await SentinelCluster.StartAsync(replicas: 2, replicaPriorities: [1, 100]);
        var (empty, survivor) = (redis.InitialReplicas[0], redis.InitialReplicas[1]);
        var settings = new Dictionary<string, string?> { ["Broker:RevocationMinReplicas"] = "1" };
        await using var a = await BrokerScenario.StartAsync(redis.Configuration, redisPrefix: Prefix, settings: settings);
        await using var peer = await a.StartPeerAsync(redis.Configuration, Prefix);
        using var peerChannel = peer.CreateChannel();
        var nodes = new[] { new Node("A", a.Host, a.Channel), new Node("B", peer, peerChannel) };
        await using var api = await ResourceApi.StartAsync(a.Host.Issuer, BrokerScenario.ResourceAudience, revocationAddress: peer.GrpcAddress, resourceServerToken: a.Operators.ResourceServerToken);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var responder = a.As("alice", "responder");
        foreach (var node in nodes)
        {
            await EventuallyAsync(() => HealthyAsync(node), Bound, $"node {node.Name} healthy on the Sentinel cluster");
        }

        // Tokens from both nodes before the failure, accepted everywhere; one task revoked.
        var before = new List<string>();
        foreach (var node in nodes)
        {
            foreach (var task in new[] { $"kept-{node.Name}", $"revoked-{node.Name}" })
            {
                before.Add((await node.Credentials.IssueCredentialAsync(a.Request(task: task), deadline: Deadline())).AccessToken);
            }

            await node.Admin.RevokeAsync(new RevokeRequest { Reason = "before the failover", Selectors = { new Broker.V1.RevocationSelector { TaskId = $"revoked-{node.Name}" } } }, responder, deadline: Deadline());
        }

        await EventuallyAsync(async () => (await StatusAsync(http, api, before[0])).Status == HttpStatusCode.OK, Bound, "the resource server to accept a token before the failure");

        // ---- the failure: the primary dies, the preferred replica has no data, Sentinel promotes it.
        Assert.Equal(1L, await empty.TryCommandAsync("EXISTS", Prefix + "revocations:epoch"));
        await redis.InitialPrimary.KillAsync();
        await empty.KillAsync();
        empty.DeleteData();
        await empty.RestartAsync();
        Assert.Equal(0L, await empty.TryCommandAsync("DBSIZE"));

        var promoted = await redis.WaitForPromotionAsync(redis.InitialPrimary, Bound);
        Assert.True(promoted == empty, $"Sentinel promoted {promoted.Name}, not the emptied replica {empty.Name}.\n{redis.Logs()}");
        Assert.Equal(0L, await promoted.TryCommandAsync("EXISTS", Prefix + "revocations:epoch"));

        // ---- every node refuses issuance, introspection and revocation with REVOCATION_STATE_LOST.
        foreach (var node in nodes)
        {
            await EventuallyAsync(async () => await IntrospectRefusalAsync(node, before[0]) == (StatusCode.Unavailable, "REVOCATION_STATE_LOST"), Bound, $"node {node.Name} to notice the missing epoch on the new primary");
            foreach (var token in before)
            {
                Assert.Equal((StatusCode.Unavailable, "REVOCATION_STATE_LOST"), await IntrospectRefusalAsync(node, token));
            }

            var issue = await Assert.ThrowsAsync<RpcException>(async () => await node.Credentials.IssueCredentialAsync(a.Request(task: $"during-{node.Name}"), deadline: Deadline()));
            Assert.Equal((StatusCode.Unavailable, "REVOCATION_STATE_LOST"), (issue.StatusCode, BrokerRefusal.From(issue).Reason));
            var revoke = await Assert.ThrowsAsync<RpcException>(async () => await node.Admin.RevokeAsync(new RevokeRequest { Reason = "during", Selectors = { new Broker.V1.RevocationSelector { TaskId = $"kept-{node.Name}" } } }, responder, deadline: Deadline()));
            Assert.Equal((StatusCode.Unavailable, "REVOCATION_STATE_LOST"), (revoke.StatusCode, BrokerRefusal.From(revoke).Reason));
            Assert.False(await HealthyAsync(node), $"node {node.Name} reports itself healthy with the epoch missing");
        }

        // The resource server on node B's stream fails closed: every token, even one never revoked.
        await EventuallyAsync(async () => (await StatusAsync(http, api, before[0])).Challenge.Contains("revocation state unknown", StringComparison.Ordinal), Bound, "the resource server to fail closed");
        foreach (var token in before)
        {
            var (status, challenge) = await StatusAsync(http, api, token);
            Assert.True(status == HttpStatusCode.Unauthorized, $"the resource server answered {(int)status} {challenge} with the epoch missing");
        }

        // ---- a responder restores the epoch on the new primary (it waits for the surviving replica).
        // Sentinels that raced to fail over may have promoted the survivor first and then turned it
        // back into a replica; its full resync then waits for a second reconfiguration round. On a
        // loaded machine they may also fail over once more, onto the survivor: either way round,
        // once the two are in sync both hold the empty state, which is what the restore must meet.
        await redis.WaitForPairInSyncAsync(promoted, survivor, 3 * Bound);
        Assert.Equal(0L, await survivor.TryCommandAsync("EXISTS", Prefix + "revocations:epoch"));
        RestoreRevocationEpochResponse? restored = null;
        await EventuallyAsync(
            async () =>
            {
                try
                {
                    restored = await a.Admin.RestoreRevocationEpochAsync(new RestoreRevocationEpochRequest { Reason = "failover onto a replica without data" }, responder, deadline: Deadline());
                    return true;
                }
                catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
                {
                    return false;
                }
            },
            Bound,
            "the epoch restore to be acknowledged");

        // Everything issued before the restore is refused at both nodes and at the resource server.
        foreach (var node in nodes)
        {
            foreach (var token in before)
            {
                await EventuallyAsync(async () => await InactiveReasonAsync(node, token) == "revoked", Bound, $"node {node.Name} to treat a token issued before the restore as revoked");
            }
        }

        foreach (var token in before)
        {
            await EventuallyAsync(async () => (await StatusAsync(http, api, token)).Challenge.Contains("token revoked", StringComparison.Ordinal), Bound, "the resource server to refuse a token issued before the restore as revoked");
        }

        // New issuance works at both nodes once past the cut-off (tokens carry whole-second iat).
        var cutoff = restored!.Cutoff.Selector.IssuedBefore.Time.ToDateTimeOffset();
        var wait = cutoff - DateTimeOffset.UtcNow + TimeSpan.FromMilliseconds(20);
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait);
        }

        foreach (var node in nodes)
        {
            await EventuallyAsync(() => HealthyAsync(node), Bound, $"node {node.Name} healthy after the restore");
            // Sentinels still settling may move the primary once more; an agent retries UNAVAILABLE.
            IssueCredentialResponse? fresh = null;
            await EventuallyAsync(
                async () =>
                {
                    try
                    {
                        fresh = await node.Credentials.IssueCredentialAsync(a.Request(task: $"after-{node.Name}"), deadline: Deadline());
                        return true;
                    }
                    catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable && BrokerRefusal.From(ex).Reason == "STATE_UNAVAILABLE")
                    {
                        return false;
                    }
                },
                Bound,
                $"node {node.Name} to issue after the restore");
            foreach (var other in nodes)
            {
                Assert.Equal("", await InactiveReasonAsync(other, fresh!.AccessToken));
            }

            await EventuallyAsync(async () => (await StatusAsync(http, api, fresh!.AccessToken)).Status == HttpStatusCode.OK, Bound, $"the resource server to accept a token node {node.Name} issued after the restore");
        }
    }

    /// <summary>Introspect's refusal as (status, reason), or (OK, "") when it answered.</summary>
    private static async Task<(StatusCode, string)> IntrospectRefusalAsync(Node node, string token)
    {
        try
        {
            await node.Revocations.IntrospectAsync(new IntrospectRequest { Token = token }, deadline: Deadline());
            return (StatusCode.OK, "");
        }
        catch (RpcException ex)
        {
            return (ex.StatusCode, BrokerRefusal.From(ex).Reason ?? "");
        }
    }

    /// <summary>"" when active, the inactive reason otherwise, or the refusal reason when Introspect is refused.</summary>
    private static async Task<string> InactiveReasonAsync(Node node, string token)
    {
        try
        {
            var answer = await node.Revocations.IntrospectAsync(new IntrospectRequest { Token = token }, deadline: Deadline());
            return answer.Active ? "" : answer.InactiveReason;
        }
        catch (RpcException ex)
        {
            return "refused: " + BrokerRefusal.From(ex).Reason;
        }
    }

    private static async Task<(HttpStatusCode Status, string Challenge)> StatusAsync(HttpClient http, ResourceApi api, string token)
    {
        using var response = await GetAsync(http, api, token);
        return (response.StatusCode, response.Headers.WwwAuthenticate.ToString());
    }
}
