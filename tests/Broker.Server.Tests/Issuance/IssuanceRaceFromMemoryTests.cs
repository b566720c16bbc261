using Broker.Server.Tests.Infrastructure;

namespace Broker.Server.Tests.Issuance;

/// <summary>
/// The same races with repeat issuances decided from memory: the node issuing for the old
/// phase does so from its confirmation, not a script, until the move's revocation reaches it;
/// every old-phase token it minted after the move must still end up refused at both nodes.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class IssuanceRaceFromMemoryTests(RedisFixture redis) : IssuanceRaceTests(redis)
{
    protected override IReadOnlyDictionary<string, string?>? Settings { get; } = new Dictionary<string, string?>
    {
        ["Broker:Issuance:RepeatFromMemory"] = "true",
    };
}
