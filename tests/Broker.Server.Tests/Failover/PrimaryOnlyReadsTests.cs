using Broker.Core.Approvals;
using Broker.Core.Revocation;
using Broker.Redis;
using Broker.Testing;
using StackExchange.Redis;

namespace Broker.Server.Tests.Failover;

/// <summary>
/// Security decisions read from the primary only. A client that knows a primary and a replica
/// (as the Sentinel connection does) would otherwise send reads to the replica once the primary
/// is gone, and a replica may lack what another replica acknowledged: a node would count itself
/// current while missing revocations. With the primary down, these reads must fail (the node
/// then turns stale and refuses) rather than answer from the replica.
/// </summary>
[Collection(SentinelFailoverCollection.Name)]
public sealed class PrimaryOnlyReadsTests
{
    [Fact]
    public async Task With_the_primary_down_revocation_risk_and_approval_reads_fail_instead_of_reading_a_replica()
    {
        await using var cluster = await SentinelCluster.StartAsync();
        var primary = cluster.InitialPrimary;
        var replica = cluster.InitialReplica;

        // Both data nodes by address, no Sentinel: the client routes by role itself.
        var config = ConfigurationOptions.Parse($"127.0.0.1:{primary.Port},127.0.0.1:{replica.Port},abortConnect=false,connectTimeout=1000,syncTimeout=1000");
        await using var redis = await ConnectionMultiplexer.ConnectAsync(config);
        var keys = new RedisKeys("primary-only:");
        using var durable = new RedisDurableWrites(redis, new RedisRevocationOptions());
        using var revocations = new RedisRevocationStore(redis, keys, durable);
        using var risk = new RedisRiskStore(redis, keys, TimeSpan.Zero);
        using var approvals = new RedisApprovalStore(redis, keys, durable);
        await redis.GetDatabase().StringSetAsync(keys.RevocationEpoch, "e1");
        await cluster.WaitForReplicaInSyncAsync(primary, replica, TimeSpan.FromSeconds(10));

        // Healthy: the reads answer (from the primary).
        Assert.Equal("e1", (await revocations.ReadAfterAsync(null, 10, default)).Epoch);

        // No Sentinel may promote the replica meanwhile: this is the moment before any failover.
        foreach (var sentinel in cluster.Sentinels)
        {
            await sentinel.KillAsync();
        }

        await primary.KillAsync();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (redis.GetServer($"127.0.0.1:{primary.Port}").IsConnected && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        // The replica still holds the data and answers a plain read...
        Assert.Equal("e1", (string?)await redis.GetDatabase().StringGetAsync(keys.RevocationEpoch, CommandFlags.PreferReplica));

        // ...but none of the security reads goes there.
        var revocationRead = await Record.ExceptionAsync(async () => await revocations.ReadAfterAsync(null, 10, default));
        var riskRead = await Record.ExceptionAsync(async () => await risk.GetAsync("spiffe://example.org/agents/a", "t-1", DateTimeOffset.UtcNow, default));
        var approvalRead = await Record.ExceptionAsync(async () => await approvals.GetAsync("apr_" + new string('0', 32), default));
        Assert.IsAssignableFrom<RedisException>(revocationRead);
        Assert.IsAssignableFrom<RedisException>(riskRead);
        Assert.IsAssignableFrom<RedisException>(approvalRead);
    }
}
