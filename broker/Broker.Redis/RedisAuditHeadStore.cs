using Broker.Core.Audit;
using StackExchange.Redis;

namespace Broker.Redis;

/// <summary>
/// Keeps each node's signed audit chain head in the hash <c>{prefix}audit:heads</c> (field: node
/// id, value: the head's JSON). One script compares and stores, so a head only moves forward:
/// an older or diverging head is refused and the stored one returned.
/// </summary>
public sealed class RedisAuditHeadStore(IConnectionMultiplexer redis, RedisKeys keys) : IAuditHeadStore
{
    private const string PublishScript = """
        local current = redis.call('HGET', KEYS[1], ARGV[1])
        if current and ARGV[4] ~= '1' then
          local stored = cjson.decode(current)
          local seq = tonumber(ARGV[2])
          if stored.seq > seq or (stored.seq == seq and stored.hash ~= ARGV[3]) then
            return current
          end
        end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[5])
        return false
        """;

    public AuditHead? Read(string node)
    {
        var value = redis.GetDatabase().HashGet(keys.AuditHeads, node);
        return value.IsNullOrEmpty ? null : AuditHeads.TryParse(value.ToString());
    }

    public async Task<IReadOnlyList<AuditHead>> ReadAllAsync(CancellationToken cancellationToken)
    {
        var entries = await redis.GetDatabase().HashGetAllAsync(keys.AuditHeads).WaitAsync(cancellationToken);
        return entries
            .Select(e => AuditHeads.TryParse(e.Value.ToString()))
            .OfType<AuditHead>()
            .OrderBy(h => h.Node, StringComparer.Ordinal)
            .ToList();
    }

    public async Task<AuditHead?> PublishAsync(AuditHead head, bool replace, CancellationToken cancellationToken)
    {
        var result = await redis.GetDatabase().ScriptEvaluateAsync(
            PublishScript,
            [keys.AuditHeads],
            [head.Node, head.Seq, head.Hash, replace ? "1" : "0", AuditHeads.ToJson(head)]).WaitAsync(cancellationToken);
        return result.IsNull ? null : AuditHeads.TryParse(result.ToString());
    }
}
