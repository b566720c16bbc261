using System.Globalization;
using Broker.Core;
using Broker.Core.Issuance;
using Broker.Core.Revocation;
using Broker.Core.State;
using StackExchange.Redis;

namespace Broker.Redis;

/// <summary>
/// Tasks and single-use proof claims in Redis, shared by every broker node. Each operation is
/// one Lua script, so its checks and writes are atomic; the steady state of issuance (nothing to
/// write) is one read-only script shared by the issuances running at the same time
/// (<see cref="RedisIssuanceChecks"/>). Keys expire with
/// what they describe: a task after its retention, a proof claim once the proof can no longer be
/// accepted. Tokens themselves are not kept here: nothing reads a per-token record (introspection
/// needs only the signed token and the revocation index), and the audit log holds every one.
/// </summary>
public sealed class RedisCredentialStore : ICredentialStore
{
    // Every script first checks the revocation epoch, in the same atomic step as its writes: a
    // Redis that came back empty has no epoch, and deciding against its empty state would hand
    // out tokens for ended tasks and accept replayed proofs. Code 5 (or -1): epoch missing.

    // Returns {code, previous phase}: 0 recorded, 1 task ended, 2 task owned by another workload,
    // 4 phase change not confirmed (nothing written), 5 epoch missing, 6 the workload holds too
    // many tasks (nothing written). ARGV[9] '1': a delegated token, which leaves the phase alone.
    // A repeat issuance for a task in the same phase writes nothing: it only reads, so Redis
    // appends nothing to its AOF, fsyncs nothing and replicates nothing. The task's retention is
    // pushed out only once less than half of it is left (ARGV[10]), not on every token.
    private const string RecordIssuanceScript = """
        if redis.call('EXISTS', KEYS[2]) == 0 then return {5, ''} end
        local task = redis.call('HMGET', KEYS[1], 'owner', 'ended', 'phase')
        if task[1] then
          if task[2] then return {1, ''} end
          if task[1] ~= ARGV[1] then return {2, ''} end
          if task[3] ~= ARGV[2] and ARGV[7] ~= '1' and ARGV[9] ~= '1' then return {4, task[3]} end
        else
          redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[3])
          if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[8]) then return {6, ''} end
          redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'created', ARGV[3])
        end
        if not task[3] or (task[3] ~= ARGV[2] and ARGV[9] ~= '1') then redis.call('HSET', KEYS[1], 'phase', ARGV[2]) end
        if redis.call('PEXPIRETIME', KEYS[1]) < tonumber(ARGV[10]) then
          local keepUntil = tonumber(ARGV[5])
          redis.call('PEXPIREAT', KEYS[1], keepUntil)
          redis.call('ZADD', KEYS[3], keepUntil, ARGV[6])
          if redis.call('PEXPIRETIME', KEYS[3]) < keepUntil then redis.call('PEXPIREAT', KEYS[3], keepUntil) end
        end
        return {0, task[3] or ''}
        """;

    // Returns 1 claimed, 0 replayed, -1 epoch missing.
    private const string ClaimProofScript = """
        if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
        if redis.call('SET', KEYS[1], '1', 'NX', 'PXAT', ARGV[1]) then return 1 end
        return 0
        """;

    // Return: {status, endedAtMs}; status 0 ended now, 1 already ended, 2 not found, 3 not owned,
    // 4 epoch missing. An empty owner (an operator's revocation) ends the task whoever owns it,
    // even an unused one.
    private const string EndTaskScript = """
        if redis.call('EXISTS', KEYS[2]) == 0 then return {4, 0} end
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
    private readonly RedisIssuanceChecks _checks;

    public RedisCredentialStore(IConnectionMultiplexer redis, RedisKeys keys)
    {
        _redis = redis;
        _keys = keys;
        _checks = new RedisIssuanceChecks(redis, keys);

        // A lost connection or a new primary: the last writes before a failover may be gone.
        redis.ConnectionFailed += (_, _) => Interrupted?.Invoke();
        redis.ConfigurationChanged += (_, _) => Interrupted?.Invoke();
    }

    public event Action? Interrupted;

    public async ValueTask<IssuanceOutcome> RecordIssuanceAsync(IssuanceRecord record, CancellationToken cancellationToken)
    {
        if (!record.PhaseChangeConfirmed)
        {
            // The steady state (a repeat issuance in the task's phase) is decided by a read shared
            // with the issuances running at the same time; only a write runs the script below.
            // The stored phase is read only where the answer carries it, as the full script's
            // answers do: an ended or foreign task is refused whatever phase it was left in.
            var (check, phase) = await _checks.CheckAsync(record);
            switch (check)
            {
                case RedisIssuanceChecks.CheckResult.Unchanged:
                    return new IssuanceOutcome(IssuanceStatus.Recorded, StoredPhase(phase));
                case RedisIssuanceChecks.CheckResult.TaskEnded:
                    return new IssuanceOutcome(IssuanceStatus.TaskEnded);
                case RedisIssuanceChecks.CheckResult.TaskNotOwned:
                    return new IssuanceOutcome(IssuanceStatus.TaskNotOwned);
                case RedisIssuanceChecks.CheckResult.PhaseChangePending:
                    return new IssuanceOutcome(IssuanceStatus.PhaseChangePending, StoredPhase(phase));
                case RedisIssuanceChecks.CheckResult.EpochMissing:
                    throw new RevocationStateLostException();
            }
        }

        var keepTaskUntil = record.ExpiresAt + record.TaskRetention;
        var result = await _redis.GetDatabase().ScriptEvaluateAsync(
            RecordIssuanceScript,
            [_keys.Task(record.TaskId), _keys.RevocationEpoch, _keys.WorkloadTasks(record.Subject)],
            [
                record.Subject,
                record.Phase.ToWire(),
                Ms(record.IssuedAt),
                Ms(record.ExpiresAt),
                Ms(keepTaskUntil),
                record.TaskId,
                record.PhaseChangeConfirmed ? "1" : "0",
                record.MaxTasksPerWorkload,
                record.Delegated ? "1" : "0",
                RetentionThreshold(record),
            ]);
        var parts = (RedisResult[])result!;
        var status = (int)parts[0] switch
        {
            0 => IssuanceStatus.Recorded,
            1 => IssuanceStatus.TaskEnded,
            2 => IssuanceStatus.TaskNotOwned,
            4 => IssuanceStatus.PhaseChangePending,
            5 => throw new RevocationStateLostException(),
            6 => IssuanceStatus.TaskLimitReached,
            var other => throw new InvalidOperationException($"Unexpected issuance script result {other}."),
        };
        return new IssuanceOutcome(status, StoredPhase(parts[1].ToString()));
    }

    public async ValueTask<bool> ClaimProofAsync(string proofKey, DateTimeOffset keepUntil, CancellationToken cancellationToken)
    {
        var result = (int)await _redis.GetDatabase().ScriptEvaluateAsync(ClaimProofScript, [_keys.Proof(proofKey), _keys.RevocationEpoch], [Ms(keepUntil)]);
        return result switch
        {
            1 => true,
            0 => false,
            _ => throw new RevocationStateLostException(),
        };
    }

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

    public async ValueTask<EndTaskOutcome> EndTaskAsync(string taskId, string? owner, DateTimeOffset at, TimeSpan retention, CancellationToken cancellationToken)
    {
        var result = (RedisResult[])(await _redis.GetDatabase().ScriptEvaluateAsync(
            EndTaskScript,
            [_keys.Task(taskId), _keys.RevocationEpoch],
            [owner ?? "", Ms(at), Ms(at + retention)]))!;
        var status = (int)result[0];
        var endedAt = FromMs((long)result[1]);
        return status switch
        {
            0 => new EndTaskOutcome(EndTaskStatus.Ended, endedAt),
            1 => new EndTaskOutcome(EndTaskStatus.AlreadyEnded, endedAt),
            2 => new EndTaskOutcome(EndTaskStatus.NotFound, null),
            3 => new EndTaskOutcome(EndTaskStatus.NotOwned, null),
            4 => throw new RevocationStateLostException(),
            _ => throw new InvalidOperationException($"Unexpected end-task script result {status}."),
        };
    }

    private static TaskPhase? StoredPhase(string phase) => string.IsNullOrEmpty(phase) ? null : TaskPhaseNames.Parse(phase);

    /// <summary>The task's retention is pushed out only once it ends before this (half of it is spent).</summary>
    internal static RedisValue RetentionThreshold(IssuanceRecord record) => Ms(record.ExpiresAt + record.TaskRetention - (record.TaskRetention / 2));

    private static RedisValue Ms(DateTimeOffset time) => time.ToUnixTimeMilliseconds();

    private static DateTimeOffset FromMs(RedisValue value) =>
        DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(value.ToString(), CultureInfo.InvariantCulture));

    private static DateTimeOffset FromMs(long value) => DateTimeOffset.FromUnixTimeMilliseconds(value);
}
