using Broker.Core.State;
using Broker.Redis;
using Broker.Server.Tests.Infrastructure;

namespace Broker.Server.Tests.State;

[Collection(RedisCollection.Name)]
public sealed class RedisCredentialStoreTests(RedisFixture redis) : CredentialStoreContract
{
    protected override ICredentialStore CreateStore() => NewStore(out _);

    /// <summary>A store on a fresh keyspace whose revocation epoch is present, as on a running cluster.</summary>
    private RedisCredentialStore NewStore(out RedisKeys keys)
    {
        keys = new RedisKeys(RedisFixture.NewPrefix());
        redis.Connection.GetDatabase().StringSet(keys.RevocationEpoch, "test-epoch");
        return new RedisCredentialStore(redis.Connection, keys);
    }

    /// <summary>
    /// A Redis that came back empty has no epoch: every decision that writes shared state refuses
    /// in the same script, writing nothing, instead of deciding against the empty state.
    /// </summary>
    [Fact]
    public async Task Without_the_epoch_nothing_is_recorded_claimed_or_ended()
    {
        var store = NewStore(out var keys);
        var now = DateTimeOffset.UtcNow;
        var record = new Broker.Core.Issuance.IssuanceRecord("tok-lost", "task-lost", "spiffe://example.org/a", Broker.Core.TaskPhase.Planning, now, now.AddMinutes(5), TimeSpan.FromHours(1), 100);
        await redis.Connection.GetDatabase().KeyDeleteAsync(keys.RevocationEpoch);

        await Assert.ThrowsAsync<Broker.Core.Revocation.RevocationStateLostException>(async () => await store.RecordIssuanceAsync(record, default));
        await Assert.ThrowsAsync<Broker.Core.Revocation.RevocationStateLostException>(async () => await store.ClaimProofAsync("jwt-svid:example.org:lost", now.AddMinutes(5), default));
        await Assert.ThrowsAsync<Broker.Core.Revocation.RevocationStateLostException>(async () => await store.EndTaskAsync("task-lost", owner: null, now, TimeSpan.FromHours(1), default));

        Assert.Null(await store.GetTaskAsync("task-lost", default));
        Assert.False(await redis.Connection.GetDatabase().KeyExistsAsync(keys.Proof("jwt-svid:example.org:lost")));
    }

    [Fact]
    public async Task The_task_is_kept_for_its_retention_past_the_token_and_no_token_record_is_written()
    {
        var store = NewStore(out var keys);
        var now = DateTimeOffset.UtcNow;
        var record = new Broker.Core.Issuance.IssuanceRecord("tok-ttl", "task-ttl", "spiffe://example.org/a", Broker.Core.TaskPhase.Planning, now, now.AddMinutes(5), TimeSpan.FromHours(1), 100);

        await store.RecordIssuanceAsync(record, default);
        var taskTtl = await redis.Connection.GetDatabase().KeyTimeToLiveAsync(keys.Task("task-ttl"));
        var held = await redis.Connection.GetDatabase().KeyTimeToLiveAsync(keys.WorkloadTasks("spiffe://example.org/a"));

        Assert.NotNull(taskTtl);
        Assert.InRange(taskTtl.Value, TimeSpan.FromMinutes(64), TimeSpan.FromMinutes(65));
        Assert.NotNull(held);
        Assert.InRange(held.Value, TimeSpan.FromMinutes(64), TimeSpan.FromMinutes(65));
        Assert.Equal([keys.Task("task-ttl").ToString(), keys.WorkloadTasks("spiffe://example.org/a").ToString()], await KeysOfAsync(keys, "task-ttl"));
    }

    /// <summary>
    /// The steady state of an agent refreshing its token: the script only reads, so Redis counts
    /// no change (nothing for its AOF to fsync or its replicas to copy). Once less than half the
    /// retention is left, one issuance pushes it out again.
    /// </summary>
    [Fact]
    public async Task A_repeat_issuance_writes_nothing_until_half_the_retention_is_spent()
    {
        var store = NewStore(out var keys);
        var now = DateTimeOffset.UtcNow;
        var retention = TimeSpan.FromHours(1);
        Broker.Core.Issuance.IssuanceRecord At(DateTimeOffset at) =>
            new(Guid.NewGuid().ToString("N"), "task-steady", "spiffe://example.org/a", Broker.Core.TaskPhase.Planning, at, at.AddMinutes(5), retention, 100);
        var db = redis.Connection.GetDatabase();
        await store.RecordIssuanceAsync(At(now), default);
        var expiry = await db.KeyExpireTimeAsync(keys.Task("task-steady"));

        var changesBefore = await ChangesAsync();
        for (var i = 1; i <= 20; i++)
        {
            Assert.Equal(Broker.Core.State.IssuanceStatus.Recorded, (await store.RecordIssuanceAsync(At(now.AddMinutes(i)), default)).Status);
        }

        Assert.Equal(changesBefore, await ChangesAsync());
        Assert.Equal(expiry, await db.KeyExpireTimeAsync(keys.Task("task-steady")));

        var late = now + retention / 2 + TimeSpan.FromMinutes(6);
        await store.RecordIssuanceAsync(At(late), default);

        Assert.True(await ChangesAsync() > changesBefore);
        Assert.Equal((late.AddMinutes(5) + retention).ToUnixTimeMilliseconds(), new DateTimeOffset((await db.KeyExpireTimeAsync(keys.Task("task-steady")))!.Value).ToUnixTimeMilliseconds());
    }

    /// <summary>
    /// Issuances running at the same time share one read-only check: 64 concurrent issuances over
    /// tasks in every state each get their own answer (recorded, ended, another workload's, phase
    /// change pending, new task claimed), and Redis runs far fewer scripts than there were calls.
    /// </summary>
    [Fact]
    public async Task Concurrent_issuances_share_a_check_and_each_gets_its_own_answer()
    {
        var store = NewStore(out _);
        var now = DateTimeOffset.UtcNow;
        const string Owner = "spiffe://example.org/a";
        Broker.Core.Issuance.IssuanceRecord Record(string task, string subject = Owner, Broker.Core.TaskPhase phase = Broker.Core.TaskPhase.Planning) =>
            new(Guid.NewGuid().ToString("N"), task, subject, phase, now, now.AddMinutes(5), TimeSpan.FromHours(1), 1000);
        for (var i = 0; i < 16; i++)
        {
            await store.RecordIssuanceAsync(Record($"steady-{i}"), default);
        }

        await store.RecordIssuanceAsync(Record("ended"), default);
        await store.EndTaskAsync("ended", Owner, now, TimeSpan.FromHours(1), default);
        await store.RecordIssuanceAsync(Record("theirs", "spiffe://example.org/b"), default);
        var scriptsBefore = await ScriptCallsAsync();

        var calls = Enumerable.Range(0, 64).Select(i => (i % 4) switch
        {
            0 => (Expected: IssuanceStatus.Recorded, Call: store.RecordIssuanceAsync(Record($"steady-{i % 16}"), default).AsTask()),
            1 => (Expected: IssuanceStatus.TaskEnded, Call: store.RecordIssuanceAsync(Record("ended"), default).AsTask()),
            2 => (Expected: IssuanceStatus.TaskNotOwned, Call: store.RecordIssuanceAsync(Record("theirs"), default).AsTask()),
            _ => (Expected: IssuanceStatus.PhaseChangePending, Call: store.RecordIssuanceAsync(Record($"steady-{i % 16}", phase: Broker.Core.TaskPhase.Execution), default).AsTask()),
        }).ToList();
        var fresh = store.RecordIssuanceAsync(Record("fresh"), default).AsTask();
        var outcomes = await Task.WhenAll(calls.Select(c => c.Call));

        Assert.Equal(calls.Select(c => c.Expected), outcomes.Select(o => o.Status));
        Assert.All(outcomes.Where(o => o.Status == IssuanceStatus.PhaseChangePending), o => Assert.Equal(Broker.Core.TaskPhase.Planning, o.PreviousPhase));
        Assert.Equal(IssuanceStatus.Recorded, (await fresh).Status);
        Assert.Equal(Owner, (await store.GetTaskAsync("fresh", default))?.Owner);
        Assert.Equal(Broker.Core.TaskPhase.Planning, (await store.GetTaskAsync("steady-3", default))?.Phase);

        // 65 issuances: a handful of shared checks plus the one write that claimed "fresh".
        var scripts = await ScriptCallsAsync() - scriptsBefore;
        Assert.InRange(scripts, 2, 16);
    }

    // Scripts Redis has run (EVAL and EVALSHA), from INFO commandstats.
    private async Task<long> ScriptCallsAsync()
    {
        await using var admin = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.Server.Configuration + ",allowAdmin=true");
        var info = await admin.GetServer(admin.GetEndPoints()[0]).InfoAsync("commandstats");
        return info.SelectMany(g => g)
            .Where(kv => kv.Key is "cmdstat_eval" or "cmdstat_evalsha")
            .Sum(kv => long.Parse(kv.Value.Split(',')[0]["calls=".Length..], System.Globalization.CultureInfo.InvariantCulture));
    }

    // Redis's count of writes since the last save ("dirty"): any write moves it; reads never do.
    // The fixture's server never saves, and tests in its collection run one at a time.
    private async Task<long> ChangesAsync()
    {
        await using var admin = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.Server.Configuration + ",allowAdmin=true");
        var info = await admin.GetServer(admin.GetEndPoints()[0]).InfoAsync("persistence");
        return long.Parse(info.SelectMany(g => g).Single(kv => kv.Key == "rdb_changes_since_last_save").Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task<string[]> KeysOfAsync(RedisKeys keys, string task)
    {
        var prefix = keys.Task(task).ToString()[..^("task:" + task).Length];
        var server = redis.Connection.GetServer(redis.Connection.GetEndPoints()[0]);
        var found = new List<string>();
        await foreach (var key in server.KeysAsync(pattern: prefix + "*"))
        {
            found.Add(key.ToString());
        }

        return [.. found.Where(k => !k.EndsWith("revocations:epoch", StringComparison.Ordinal)).Order(StringComparer.Ordinal)];
    }
}
