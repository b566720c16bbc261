using Broker.Core.Risk;

namespace Broker.Server.Tests.Risk;

public sealed class InMemoryRiskStoreTests : RiskStoreContract
{
    protected override IRiskStore CreateStore() => new InMemoryRiskStore();
}
