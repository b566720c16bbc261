using Broker.Core.State;

namespace Broker.Server.Tests.State;

public sealed class InMemoryCredentialStoreTests : CredentialStoreContract
{
    protected override ICredentialStore CreateStore() => new InMemoryCredentialStore(Time);
}
