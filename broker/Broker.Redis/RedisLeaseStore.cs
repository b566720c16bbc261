using System.Globalization;
using Broker.Core;
using Broker.Core.Secrets;
using StackExchange.Redis;

namespace Broker.Redis;

/// <summary>
/// Leases in Redis, shared by every node. The record is written through <see cref="RedisDurableWrites"/>
/// (replicas confirm where configured) before the credential exists; a claim key with an expiry
/// makes ending a lease exactly-once across nodes while letting a crashed node's claim lapse.
/// </summary>
public sealed class RedisLeaseStore : ILeaseStore
{
    private const string RecordScript = """
        redis.call('HSET', KEYS[1], 'engine', ARGV[2], 'role', ARGV[3], 'login', ARGV[4], 'task', ARGV[5], 'sub', ARGV[6], 'phase', ARGV[7], 'iat', ARGV[8], 'exp', ARGV[9], 'node', ARGV[10])
        redis.call('ZADD', KEYS[2], ARGV[9], ARGV[1])
        return 1
        """;

    private const string ClaimScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
        return 0
        """;

    private const string UnclaimedScript = """
        if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('EXISTS', KEYS[2]) == 0 then return 1 end
        return 0
        """;

    private const string CompleteScript = """
        if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
        redis.call('DEL', KEYS[1], KEYS[2])
        redis.call('ZREM', KEYS[3], ARGV[2])
        return 1
        """;

    private const string ReleaseScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
        return 1
        """;

    private readonly IConnectionMultiplexer _redis;
    private readonly RedisDurableWrites _durable;
    private readonly RedisKeys _keys;

    public RedisLeaseStore(IConnectionMultiplexer redis, RedisDurableWrites durable, RedisKeys keys)
    {
        _redis = redis;
        _durable = durable;
        _keys = keys;
    }

    public Task RecordAsync(SecretLease lease, CancellationToken cancellationToken) =>
        _durable.WriteAsync("lease record", db => db.ScriptEvaluateAsync(
            RecordScript,
            [_keys.Lease(lease.LeaseId), _keys.Leases],
            [
                lease.LeaseId, lease.Engine, lease.Role, lease.Login, lease.TaskId, lease.Subject, lease.Phase.ToWire(),
                lease.IssuedAt.ToUnixTimeMilliseconds(), lease.ExpiresAt.ToUnixTimeMilliseconds(), lease.Node,
            ]));

    public async Task<SecretLease?> GetAsync(string leaseId, CancellationToken cancellationToken)
    {
        var fields = await _redis.GetDatabase().HashGetAllAsync(_keys.Lease(leaseId), CommandFlags.DemandMaster);
        return Parse(leaseId, fields);
    }

    public async Task<IReadOnlyList<SecretLease>> ListAsync(int limit, CancellationToken cancellationToken)
    {
        var db = _redis.GetDatabase();
        var ids = await db.SortedSetRangeByRankAsync(_keys.Leases, 0, limit - 1, Order.Ascending, CommandFlags.DemandMaster);
        var reads = ids.Select(id => db.HashGetAllAsync(_keys.Lease(id.ToString()), CommandFlags.DemandMaster)).ToArray();
        await Task.WhenAll(reads);
        var leases = new List<SecretLease>(ids.Length);
        for (var i = 0; i < ids.Length; i++)
        {
            if (Parse(ids[i].ToString(), reads[i].Result) is { } lease)
            {
                leases.Add(lease);
            }
        }

        return leases;
    }

    public async Task<bool> TryClaimAsync(string leaseId, string node, TimeSpan hold, CancellationToken cancellationToken) =>
        (int)await _redis.GetDatabase().ScriptEvaluateAsync(ClaimScript, [_keys.Lease(leaseId), _keys.LeaseClaim(leaseId)], [node, (long)hold.TotalMilliseconds]) == 1;

    public async Task<bool> IsUnclaimedAsync(string leaseId, CancellationToken cancellationToken) =>
        (int)await _redis.GetDatabase().ScriptEvaluateAsync(UnclaimedScript, [_keys.Lease(leaseId), _keys.LeaseClaim(leaseId)]) == 1;

    public async Task<bool> CompleteAsync(string leaseId, string node, CancellationToken cancellationToken) =>
        (int)await _redis.GetDatabase().ScriptEvaluateAsync(CompleteScript, [_keys.Lease(leaseId), _keys.LeaseClaim(leaseId), _keys.Leases], [node, leaseId]) == 1;

    public Task ReleaseAsync(string leaseId, string node, CancellationToken cancellationToken) =>
        _redis.GetDatabase().ScriptEvaluateAsync(ReleaseScript, [_keys.LeaseClaim(leaseId)], [node]);

    private static SecretLease? Parse(string leaseId, HashEntry[] fields)
    {
        if (fields.Length == 0)
        {
            return null;
        }

        var map = fields.ToDictionary(f => f.Name.ToString(), f => f.Value.ToString(), StringComparer.Ordinal);
        return new SecretLease(
            leaseId,
            map["engine"],
            map["role"],
            map["login"],
            map["task"],
            map["sub"],
            TaskPhaseNames.Parse(map["phase"]),
            DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(map["iat"], CultureInfo.InvariantCulture)),
            DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(map["exp"], CultureInfo.InvariantCulture)),
            map["node"]);
    }
}
