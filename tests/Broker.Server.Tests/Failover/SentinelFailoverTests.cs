using Xunit.Abstractions;

namespace Broker.Server.Tests.Failover;

/// <summary>
/// The Redis primary killed under load at two broker nodes connected through Sentinel
/// (<see cref="SentinelFailoverWorkload"/>), with one replica and with two.
/// </summary>
[Collection(SentinelFailoverCollection.Name)]
public sealed class SentinelFailoverTests(ITestOutputHelper output)
{
    [Fact]
    public Task Primary_killed_under_load_loses_no_acknowledged_revocation_and_both_nodes_recover() =>
        new SentinelFailoverWorkload(output, replicas: 1).RunAsync();

    /// <summary>
    /// With a second replica the new primary still has one after the promotion, so
    /// <c>min-replicas-to-write 1</c> and <c>WAIT 1</c> are satisfied without the old primary,
    /// which stays down.
    /// </summary>
    [Fact]
    public Task With_two_replicas_the_primary_killed_under_load_loses_no_acknowledged_revocation_and_both_nodes_recover_without_it() =>
        new SentinelFailoverWorkload(output, replicas: 2).RunAsync();
}

/// <summary>The real-process failover tests run one at a time: each measures a window, and each starts five Redis processes and two nodes.</summary>
[CollectionDefinition(Name)]
public sealed class SentinelFailoverCollection
{
    public const string Name = "Sentinel failover";
}
