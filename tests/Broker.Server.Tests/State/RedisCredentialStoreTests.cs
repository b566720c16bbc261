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
        Assert.Null(await store.GetTokenAsync("tok-lost", default));
        Assert.False(await redis.Connection.GetDatabase().KeyExistsAsync(keys.Proof("jwt-svid:example.org:lost")));
    }

    [Fact]
    public async Task Token_record_expires_with_the_token()
    {
        var store = NewStore(out var keys);
        var now = DateTimeOffset.UtcNow;
        var record = new Broker.Core.Issuance.IssuanceRecord("tok-ttl", "task-ttl", "spiffe://example.org/a", Broker.Core.TaskPhase.Planning, now, now.AddMinutes(5), TimeSpan.FromHours(1), 100);

        await store.RecordIssuanceAsync(record, default);
        var ttl = await redis.Connection.GetDatabase().KeyTimeToLiveAsync(keys.Token("tok-ttl"));
        var taskTtl = await redis.Connection.GetDatabase().KeyTimeToLiveAsync(keys.Task("task-ttl"));
        var held = await redis.Connection.GetDatabase().KeyTimeToLiveAsync(keys.WorkloadTasks("spiffe://example.org/a"));

        Assert.NotNull(ttl);
        Assert.InRange(ttl.Value, TimeSpan.FromMinutes(4), TimeSpan.FromMinutes(5));
        Assert.NotNull(taskTtl);
        Assert.InRange(taskTtl.Value, TimeSpan.FromMinutes(64), TimeSpan.FromMinutes(65));
        Assert.NotNull(held);
        Assert.InRange(held.Value, TimeSpan.FromMinutes(64), TimeSpan.FromMinutes(65));
    }
}
