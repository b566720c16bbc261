using Broker.Core.Secrets;
using Broker.Redis;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;

namespace Broker.Server.Tests.Secrets;

[Collection(RedisCollection.Name)]
public sealed class RedisLeaseStoreTests(RedisFixture redis) : LeaseStoreContract, IDisposable
{
    private readonly RedisKeys _keys = new(RedisFixture.NewPrefix());
    private readonly RedisDurableWrites _durable = new(redis.Connection, new RedisRevocationOptions());

    // Redis expires the claim on its own clock: short, so the lapse case waits a moment only.
    protected override TimeSpan ShortHold => TimeSpan.FromMilliseconds(200);

    protected override ILeaseStore CreateStore() => new RedisLeaseStore(redis.Connection, _durable, _keys);

    protected override Task LetClaimLapseAsync(ILeaseStore store, string leaseId, TimeSpan hold) =>
        Poll.UntilAsync(async () => !await redis.Connection.GetDatabase().KeyExistsAsync(_keys.LeaseClaim(leaseId)), $"the claim on {leaseId} to lapse after {hold.TotalMilliseconds} ms");

    public void Dispose() => _durable.Dispose();
}
