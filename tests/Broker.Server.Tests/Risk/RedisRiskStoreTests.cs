using Broker.Core.Risk;
using Broker.Redis;
using Broker.Server.Tests.Infrastructure;

namespace Broker.Server.Tests.Risk;

/// <summary>
/// Redis expires risk keys on its own clock; the store also compares valid_until with the
/// caller's clock, so the contract runs on a fake clock here too.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class RedisRiskStoreTests(RedisFixture redis) : RiskStoreContract
{
    protected override IRiskStore CreateStore() => new RedisRiskStore(redis.Connection, new RedisKeys(RedisFixture.NewPrefix()));

    [Fact]
    public async Task A_risk_key_expires_with_its_signal_and_a_signal_id_is_kept_a_little_longer()
    {
        var keys = new RedisKeys(RedisFixture.NewPrefix());
        var store = new RedisRiskStore(redis.Connection, keys);
        var now = DateTimeOffset.UtcNow;
        var signal = new RiskSignal("s-ttl", "spiffe://example.org/agents/a", null, RiskLevel.High, 1, "jailbreak", null, now, now.AddMinutes(5), "spiffe://example.org/rp");

        await store.ApplyAsync(signal, signal.Digest(), RiskLevel.Critical, now, signal.ValidUntil.AddMinutes(5), default);
        var db = redis.Connection.GetDatabase();
        var riskTtl = await db.KeyTimeToLiveAsync(keys.Risk('a', signal.Agent));
        var idTtl = await db.KeyTimeToLiveAsync(keys.Signal("s-ttl"));

        Assert.NotNull(riskTtl);
        Assert.InRange(riskTtl.Value, TimeSpan.FromMinutes(4), TimeSpan.FromMinutes(5));
        Assert.NotNull(idTtl);
        Assert.InRange(idTtl.Value, TimeSpan.FromMinutes(9), TimeSpan.FromMinutes(10));
    }
}
