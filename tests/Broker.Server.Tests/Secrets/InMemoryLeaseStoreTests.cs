using Broker.Core.Secrets;

namespace Broker.Server.Tests.Secrets;

public sealed class InMemoryLeaseStoreTests : LeaseStoreContract
{
    protected override ILeaseStore CreateStore() => new InMemoryLeaseStore(Time);

    protected override Task LetClaimLapseAsync(ILeaseStore store, string leaseId, TimeSpan hold)
    {
        Time.Advance(hold + TimeSpan.FromMilliseconds(1));
        return Task.CompletedTask;
    }
}
