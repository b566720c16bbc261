using Broker.Core.Audit;
using Broker.Server.Tests.Infrastructure;
using Broker.V1;
using StackExchange.Redis;

namespace Broker.Server.Tests.Audit;

/// <summary>With Broker:Audit:MirrorToRedis, a node copies each durable record to {prefix}audit, exactly as written.</summary>
[Collection(RedisCollection.Name)]
public sealed class AuditMirrorTests(RedisFixture redis) : IAsyncLifetime
{
    private readonly string _prefix = RedisFixture.NewPrefix();
    private BrokerScenario _cluster = null!;
    private BrokerTestHost _node = null!;

    public async Task InitializeAsync()
    {
        _cluster = await BrokerScenario.StartAsync(redis.Server.Configuration, redisPrefix: _prefix);
        _node = await BrokerTestHost.StartAsync(new BrokerTestHostOptions
        {
            PolicyPath = _cluster.PolicyPath,
            Audience = BrokerScenario.Audience,
            RedisConfiguration = redis.Server.Configuration,
            RedisKeyPrefix = _prefix,
            OperatorAuthority = _cluster.Operators.Issuer,
            SigningKeyFiles = [_cluster.SigningKeyFile],
            Issuer = _cluster.Host.Issuer,
            Settings = new Dictionary<string, string?>
            {
                ["Broker:Audit:MirrorToRedis"] = "true",
                ["Broker:Audit:MirrorMaxLength"] = "1000",
            },
        });
    }

    public async Task DisposeAsync()
    {
        await _node.DisposeAsync();
        await _cluster.DisposeAsync();
    }

    [Fact]
    public async Task The_stream_receives_every_record_of_the_mirroring_node_as_written()
    {
        using var channel = _node.CreateChannel();
        var issued = await new CredentialService.CredentialServiceClient(channel).IssueCredentialAsync(_cluster.Request(_cluster.Svid(), task: "mirrored"));

        var db = redis.Connection.GetDatabase();
        string[] local = [];
        StreamEntry[] mirrored = [];
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            local = [.. AuditReader.ReadAll([_node.AuditPath]).Select(r => r.Json)];
            mirrored = await db.StreamRangeAsync(_prefix + "audit");
            if (mirrored.Length >= local.Length && local.Any(l => l.Contains(issued.TokenId, StringComparison.Ordinal)))
            {
                break;
            }

            await Task.Delay(50);
        }

        Assert.Equal(local, mirrored.Select(e => (string)e["r"]!));
        Assert.Contains(mirrored, e => ((string)e["r"]!).Contains("\"credential.issued\"", StringComparison.Ordinal) && ((string)e["r"]!).Contains(issued.TokenId, StringComparison.Ordinal));
        Assert.DoesNotContain(mirrored, e => ((string)e["r"]!).Contains(issued.AccessToken, StringComparison.Ordinal));
    }
}
