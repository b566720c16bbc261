using System.Globalization;
using Broker.Core;
using Broker.Core.Issuance;
using Broker.Core.State;
using StackExchange.Redis;

namespace Broker.Redis;

/// <summary>
/// Tasks and issued-token records in Redis, shared by every broker node. Each operation is one
/// Lua script, so its checks and writes are atomic and cost one round trip. Keys expire with
/// what they describe: a token record at its expiry, a task after its retention.
/// </summary>
public sealed class RedisCredentialStore : ICredentialStore
{
    // Returns {code, previous phase}: 0 recorded, 1 task ended, 2 task owned by another workload,
    // 3 proof replayed, 4 phase change not confirmed (nothing written).
    private const string RecordIssuanceScript = """
        local task = redis.call('HMGET', KEYS[1], 'owner', 'ended', 'phase')
        if task[1] then
          if task[2] then return {1, ''} end
          if task[1] ~= ARGV[1] then return {2, ''} end
          if task[3] ~= ARGV[2] and ARGV[10] ~= '1' then return {4, task[3]} end
        end
        if ARGV[8] == '1' then
          if not redis.call('SET', KEYS[3], '1', 'NX', 'PXAT', ARGV[6]) then return {3, ''} end
        end
        if not task[1] then
          redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'created', ARGV[3])
        end
        redis.call('HSET', KEYS[1], 'phase', ARGV[2])
        local keepUntil = tonumber(ARGV[7])
        if redis.call('PEXPIRETIME', KEYS[1]) < keepUntil then
          redis.call('PEXPIREAT', KEYS[1], keepUntil)
        end
        redis.call('HSET', KEYS[2], 'task', ARGV[9], 'sub', ARGV[1], 'phase', ARGV[2], 'iat', ARGV[3], 'exp', ARGV[4])
        redis.call('PEXPIREAT', KEYS[2], ARGV[4])
        return {0, task[3] or ''}
        """;

    // Return: {status, endedAtMs}; status 0 ended now, 1 already ended, 2 not found, 3 not owned.
    // An empty owner (an operator's revocation) ends the task whoever owns it, even an unused one.
    private const string EndTaskScript = """
        local task = redis.call('HMGET', KEYS[1], 'owner', 'ended')
        if not task[1] then
          if ARGV[1] ~= '' then return {2, 0} end
          redis.call('HSET', KEYS[1], 'owner', '', 'created', ARGV[2], 'phase', 'planning')
        elseif ARGV[1] ~= '' and task[1] ~= ARGV[1] then return {3, 0} end
        if task[2] then return {1, tonumber(task[2])} end
        redis.call('HSET', KEYS[1], 'ended', ARGV[2])
        redis.call('PEXPIREAT', KEYS[1], ARGV[3])
        return {0, tonumber(ARGV[2])}
        """;

    private readonly IConnectionMultiplexer _redis;
    private readonly RedisKeys _keys;

    public RedisCredentialStore(IConnectionMultiplexer redis, RedisKeys keys)
    {
        _redis = redis;
        _keys = keys;
    }

    public async ValueTask<IssuanceOutcome> RecordIssuanceAsync(IssuanceRecord record, CancellationToken cancellationToken)
    {
        var keepTaskUntil = record.ExpiresAt + record.TaskRetention;
        var result = await _redis.GetDatabase().ScriptEvaluateAsync(
            RecordIssuanceScript,
            [_keys.Task(record.TaskId), _keys.Token(record.TokenId), record.ProofKey is null ? _keys.Proof("-") : _keys.Proof(record.ProofKey)],
            [
                record.Subject,
                record.Phase.ToWire(),
                Ms(record.IssuedAt),
                Ms(record.ExpiresAt),
                0,
                Ms(record.ProofExpiresAt),
                Ms(keepTaskUntil),
                record.ProofKey is null ? "0" : "1",
                record.TaskId,
                record.PhaseChangeConfirmed ? "1" : "0",
            ]);
        var parts = (RedisResult[])result!;
        var status = (int)parts[0] switch
        {
            0 => IssuanceStatus.Recorded,
            1 => IssuanceStatus.TaskEnded,
            2 => IssuanceStatus.TaskNotOwned,
            3 => IssuanceStatus.ProofReplayed,
            4 => IssuanceStatus.PhaseChangePending,
            var other => throw new InvalidOperationException($"Unexpected issuance script result {other}."),
        };
        var previous = parts[1].ToString();
        return new IssuanceOutcome(status, string.IsNullOrEmpty(previous) ? null : TaskPhaseNames.Parse(previous));
    }

    public async ValueTask ForgetIssuanceAsync(IssuanceRecord record, CancellationToken cancellationToken) =>
        await _redis.GetDatabase().KeyDeleteAsync(_keys.Token(record.TokenId));

    public async ValueTask<TaskRecord?> GetTaskAsync(string taskId, CancellationToken cancellationToken)
    {
        var fields = await _redis.GetDatabase().HashGetAllAsync(_keys.Task(taskId), CommandFlags.DemandMaster);
        if (fields.Length == 0)
        {
            return null;
        }

        var map = fields.ToDictionary(f => f.Name.ToString(), f => f.Value, StringComparer.Ordinal);
        return new TaskRecord(
            taskId,
            map["owner"].ToString(),
            TaskPhaseNames.Parse(map["phase"].ToString()),
            FromMs(map["created"]),
            map.TryGetValue("ended", out var ended) ? FromMs(ended) : null);
    }

    public async ValueTask<IssuedTokenRecord?> GetTokenAsync(string tokenId, CancellationToken cancellationToken)
    {
        var fields = await _redis.GetDatabase().HashGetAllAsync(_keys.Token(tokenId), CommandFlags.DemandMaster);
        if (fields.Length == 0)
        {
            return null;
        }

        var map = fields.ToDictionary(f => f.Name.ToString(), f => f.Value, StringComparer.Ordinal);
        return new IssuedTokenRecord(tokenId, map["task"].ToString(), map["sub"].ToString(), TaskPhaseNames.Parse(map["phase"].ToString()), FromMs(map["iat"]), FromMs(map["exp"]));
    }

    public async ValueTask<EndTaskOutcome> EndTaskAsync(string taskId, string? owner, DateTimeOffset at, TimeSpan retention, CancellationToken cancellationToken)
    {
        var result = (RedisResult[])(await _redis.GetDatabase().ScriptEvaluateAsync(
            EndTaskScript,
            [_keys.Task(taskId)],
            [owner ?? "", Ms(at), Ms(at + retention)]))!;
        var status = (int)result[0];
        var endedAt = FromMs((long)result[1]);
        return status switch
        {
            0 => new EndTaskOutcome(EndTaskStatus.Ended, endedAt),
            1 => new EndTaskOutcome(EndTaskStatus.AlreadyEnded, endedAt),
            2 => new EndTaskOutcome(EndTaskStatus.NotFound, null),
            3 => new EndTaskOutcome(EndTaskStatus.NotOwned, null),
            _ => throw new InvalidOperationException($"Unexpected end-task script result {status}."),
        };
    }

    private static RedisValue Ms(DateTimeOffset time) => time.ToUnixTimeMilliseconds();

    private static DateTimeOffset FromMs(RedisValue value) =>
        DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(value.ToString(), CultureInfo.InvariantCulture));

    private static DateTimeOffset FromMs(long value) => DateTimeOffset.FromUnixTimeMilliseconds(value);
}
