using StackExchange.Redis;

namespace Broker.Redis;

/// <summary>Key names under one prefix, so several brokers (or tests) can share a Redis.</summary>
public sealed class RedisKeys
{
    private readonly string _prefix;

    public RedisKeys(string prefix = "broker:")
    {
        _prefix = prefix;
    }

    public RedisKey Task(string taskId) => _prefix + "task:" + taskId;

    public RedisKey Token(string tokenId) => _prefix + "token:" + tokenId;

    public RedisKey Proof(string proofKey) => _prefix + "proof:" + proofKey;

    public RedisKey RevocationStream => _prefix + "revocations";

    public RedisKey RevocationEpoch => _prefix + "revocations:epoch";

    public string RevocationChannel => _prefix + "revocations:notify";
}
