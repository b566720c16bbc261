using System.Security.Cryptography;
using System.Text;
using Broker.Core.Errors;
using Broker.Core.Ssf;
using StackExchange.Redis;

namespace Broker.Redis;

/// <summary>Received SET jtis shared by every node: <c>{prefix}proof:ssf:&lt;sha256(issuer#jti)&gt;</c>, set-if-absent with an expiry.</summary>
public sealed class RedisSsfReplayStore(IConnectionMultiplexer redis, RedisKeys keys, TimeProvider time) : ISsfReplayStore
{
    public async ValueTask<bool> TryClaimAsync(string issuer, string jti, DateTimeOffset until, CancellationToken cancellationToken)
    {
        var ttl = until - time.GetUtcNow();
        try
        {
            return await redis.GetDatabase().StringSetAsync(Key(issuer, jti), "1", ttl > TimeSpan.Zero ? ttl : TimeSpan.FromSeconds(1), When.NotExists);
        }
        catch (RedisException ex)
        {
            throw BrokerErrors.Unavailable(BrokerErrors.StateUnavailable, "Broker state cannot be reached; try again.", ex);
        }
    }

    public async ValueTask ReleaseAsync(string issuer, string jti, CancellationToken cancellationToken)
    {
        try
        {
            await redis.GetDatabase().KeyDeleteAsync(Key(issuer, jti));
        }
        catch (RedisException)
        {
            // The claim then expires on its own.
        }
    }

    private RedisKey Key(string issuer, string jti) =>
        keys.Proof("ssf:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(issuer + "#" + jti))));
}
