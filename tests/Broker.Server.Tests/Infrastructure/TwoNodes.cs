using Broker.Client;
using Broker.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Broker.Server.Tests.Infrastructure;

/// <summary>
/// Two broker nodes sharing one Redis keyspace, as a fleet runs: node A is a full scenario
/// (trust domain, operators, policy) and node B a peer started with the same settings.
/// </summary>
public sealed class TwoNodes : IAsyncDisposable
{
    private readonly RedisFixture _redis;

    private TwoNodes(RedisFixture redis, string prefix, BrokerScenario a, BrokerTestHost bHost)
    {
        _redis = redis;
        Prefix = prefix;
        A = a;
        BHost = bHost;
        BChannel = bHost.CreateChannel();
    }

    public string Prefix { get; }

    public BrokerScenario A { get; }

    public BrokerTestHost BHost { get; }

    public GrpcChannel BChannel { get; }

    public CredentialService.CredentialServiceClient B => new(BChannel);

    /// <param name="policy">As for <see cref="BrokerScenario.StartAsync"/>; null means <see cref="BrokerScenario.Policy"/>.</param>
    public static async Task<TwoNodes> StartAsync(RedisFixture redis, IReadOnlyDictionary<string, string?>? settings = null, Func<string, string, string>? policy = null)
    {
        var prefix = RedisFixture.NewPrefix();
        var a = await BrokerScenario.StartAsync(redis.Server.Configuration, redisPrefix: prefix, settings: settings, policy: policy);
        var b = await a.StartPeerAsync(redis.Server.Configuration, prefix);
        return new TwoNodes(redis, prefix, a, b);
    }

    /// <summary>The refusal an issuance for <paramref name="task"/> gets at <paramref name="node"/>, or null when it is issued.</summary>
    public async Task<BrokerRefusal?> RefusalAsync(CredentialService.CredentialServiceClient node, string task)
    {
        try
        {
            await node.IssueCredentialAsync(A.Request(task: task));
            return null;
        }
        catch (RpcException ex)
        {
            return BrokerRefusal.From(ex);
        }
    }

    /// <summary>Deletes every key of this fleet, the revocation epoch included: what a Redis restarted without its data holds.</summary>
    public async Task EmptyRedisAsync()
    {
        var keys = _redis.Connection.GetServer(_redis.Connection.GetEndPoints()[0]).Keys(pattern: Prefix + "*").ToArray();
        Assert.Contains(keys, k => k.ToString().EndsWith("revocations:epoch", StringComparison.Ordinal));
        await _redis.Connection.GetDatabase().KeyDeleteAsync(keys);
    }

    public async ValueTask DisposeAsync()
    {
        BChannel.Dispose();
        await BHost.DisposeAsync();
        await A.DisposeAsync();
    }
}
