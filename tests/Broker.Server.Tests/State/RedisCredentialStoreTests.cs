using Broker.Core.State;
using Broker.Redis;
using Broker.Server.Tests.Infrastructure;

namespace Broker.Server.Tests.State;

[Collection(RedisCollection.Name)]
public sealed class RedisCredentialStoreTests(RedisFixture redis) : CredentialStoreContract
{
    protected override ICredentialStore CreateStore() => new RedisCredentialStore(redis.Connection, new RedisKeys(RedisFixture.NewPrefix()));

    [Fact]
    public async Task Token_record_expires_with_the_token()
    {
        var prefix = RedisFixture.NewPrefix();
        var store = new RedisCredentialStore(redis.Connection, new RedisKeys(prefix));
        var now = DateTimeOffset.UtcNow;
        var record = new Broker.Core.Issuance.IssuanceRecord("tok-ttl", "task-ttl", "spiffe://example.org/a", Broker.Core.TaskPhase.Planning, now, now.AddMinutes(5), null, now, TimeSpan.FromHours(1));

        await store.RecordIssuanceAsync(record, default);
        var ttl = await redis.Connection.GetDatabase().KeyTimeToLiveAsync(new RedisKeys(prefix).Token("tok-ttl"));
        var taskTtl = await redis.Connection.GetDatabase().KeyTimeToLiveAsync(new RedisKeys(prefix).Task("task-ttl"));

        Assert.NotNull(ttl);
        Assert.InRange(ttl.Value, TimeSpan.FromMinutes(4), TimeSpan.FromMinutes(5));
        Assert.NotNull(taskTtl);
        Assert.InRange(taskTtl.Value, TimeSpan.FromMinutes(64), TimeSpan.FromMinutes(65));
    }
}
