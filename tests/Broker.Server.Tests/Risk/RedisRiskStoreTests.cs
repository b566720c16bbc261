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

    /// <summary>
    /// Two nodes (two connections, one keyspace), each keeping read views for an hour: a signal
    /// or a clear at one is seen by the other's next read, because the change is announced.
    /// Without the announcement the second node would answer from its copy for the hour.
    /// </summary>
    [Fact]
    public async Task A_change_at_one_node_drops_the_other_nodes_cached_view()
    {
        var keys = new RedisKeys(RedisFixture.NewPrefix());
        await using var otherConnection = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.Server.Configuration);
        using var writer = new RedisRiskStore(otherConnection, keys, TimeSpan.FromHours(1));
        using var reader = new RedisRiskStore(redis.Connection, keys, TimeSpan.FromHours(1));
        const string agent = "spiffe://example.org/agents/cached";
        var now = DateTimeOffset.UtcNow;

        Assert.Null((await reader.GetAsync(agent, "t-1", now, default)).Agent.Current);
        var signal = new RiskSignal("s-cache", agent, null, RiskLevel.Critical, 99, "exfiltration", null, now, now.AddMinutes(5), "spiffe://example.org/rp");
        await writer.ApplyAsync(signal, signal.Digest(), null, now, now.AddMinutes(10), default);

        Assert.Equal(RiskLevel.Critical, (await EventuallyAsync(() => reader.GetAsync(agent, "t-1", now, default), v => v.Agent.Current is not null)).Agent.Current!.Level);

        await writer.ClearAsync(new RiskSubject(RiskSubjectKind.Agent, agent), now, now.AddMinutes(10), default);
        Assert.Null((await EventuallyAsync(() => reader.GetAsync(agent, "t-1", now, default), v => v.Agent.Current is null)).Agent.Current);
    }

    /// <summary>The point of the copy: repeated gate reads for the same agent and task cost Redis one read.</summary>
    [Fact]
    public async Task Repeated_reads_for_the_same_agent_and_task_are_answered_from_the_copy()
    {
        using var store = new RedisRiskStore(redis.Connection, new RedisKeys(RedisFixture.NewPrefix()), TimeSpan.FromHours(1));
        await using var admin = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.Server.Configuration + ",allowAdmin=true");
        var server = admin.GetServer(admin.GetEndPoints()[0]);
        var now = DateTimeOffset.UtcNow;
        await store.GetAsync("spiffe://example.org/agents/hot", "t-hot", now, default);

        var before = await ScriptCallsAsync(server);
        for (var i = 0; i < 50; i++)
        {
            await store.GetAsync("spiffe://example.org/agents/hot", "t-hot", now, default);
        }

        Assert.Equal(before, await ScriptCallsAsync(server));
        await store.GetAsync("spiffe://example.org/agents/other", "t-hot", now, default);
        Assert.True(await ScriptCallsAsync(server) > before, "a different agent is read from Redis");
    }

    private static async Task<long> ScriptCallsAsync(StackExchange.Redis.IServer server)
    {
        // Every script call (EVAL, EVALSHA) on this Redis, from INFO commandstats.
        var stats = (await server.InfoAsync("commandstats")).SelectMany(g => g).ToList();
        long calls = 0;
        foreach (var stat in stats.Where(s => s.Key is "cmdstat_evalsha" or "cmdstat_eval"))
        {
            var field = stat.Value.Split(',').First(f => f.StartsWith("calls=", StringComparison.Ordinal));
            calls += long.Parse(field["calls=".Length..], System.Globalization.CultureInfo.InvariantCulture);
        }

        return calls;
    }

    /// <summary>A cached view never outlives the signal in it: the lapse is applied when it is served.</summary>
    [Fact]
    public async Task A_cached_view_drops_a_signal_that_lapsed_since_it_was_read()
    {
        using var store = new RedisRiskStore(redis.Connection, new RedisKeys(RedisFixture.NewPrefix()), TimeSpan.FromHours(1));
        const string agent = "spiffe://example.org/agents/lapsing";
        var now = DateTimeOffset.UtcNow;
        var signal = new RiskSignal("s-lapse", agent, null, RiskLevel.High, 80, "jailbreak", null, now, now.AddSeconds(30), "spiffe://example.org/rp");
        await store.ApplyAsync(signal, signal.Digest(), null, now, now.AddMinutes(10), default);

        Assert.NotNull((await store.GetAsync(agent, null, now, default)).Agent.Current);
        Assert.Null((await store.GetAsync(agent, null, now.AddSeconds(31), default)).Agent.Current);
    }

    private static async Task<RiskView> EventuallyAsync(Func<ValueTask<RiskView>> read, Func<RiskView, bool> done)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var view = await read();
            if (done(view) || DateTime.UtcNow > deadline)
            {
                return view;
            }

            await Task.Delay(5);
        }
    }

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
