using System.Globalization;
using Broker.Core.Risk;
using StackExchange.Redis;

namespace Broker.Redis;

/// <summary>
/// Current risk per agent and per task in Redis, shared by every broker node. Applying a signal
/// is one Lua script (idempotency, ordering by observed_at, freeze) that also announces the
/// change; reading the gate's view is one more, answered from <see cref="RiskViewCache"/> while
/// no change was announced. Risk keys expire with their signal.
/// </summary>
public sealed class RedisRiskStore : IRiskStore, IDisposable
{
    // KEYS: signal id, risk, freeze, floor. ARGV: 1 digest, 2 keep id until ms, 3 observed ms,
    // 4 valid until ms, 5 level, 6 containment level (99 = off), 7 signal id, 8 score, 9 detector,
    // 10 source, 11 now ms, 12 change channel. Returns {status, freeze change, frozen by this signal}:
    // status 0 applied, 1 superseded, 2 duplicate, 3 id reused; freeze 0 none, 1 frozen, 2 lifted.
    private const string ApplyScript = """
        local prev = redis.call('GET', KEYS[1])
        if prev then
          if prev ~= ARGV[1] then return {3, 0, 0} end
          if redis.call('HGET', KEYS[3], 'sid') == ARGV[7] then return {2, 0, 1} end
          return {2, 0, 0}
        end
        redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
        local obs = tonumber(ARGV[3])
        local floor = redis.call('GET', KEYS[4])
        if floor and tonumber(floor) >= obs then return {1, 0, 0} end
        local cur = redis.call('HGET', KEYS[2], 'obs')
        if cur and tonumber(cur) >= obs then return {1, 0, 0} end
        local fobs = redis.call('HGET', KEYS[3], 'obs')
        if fobs and tonumber(fobs) >= obs then return {1, 0, 0} end
        if tonumber(ARGV[4]) > tonumber(ARGV[11]) then
          redis.call('DEL', KEYS[2])
          redis.call('HSET', KEYS[2], 'sid', ARGV[7], 'level', ARGV[5], 'score', ARGV[8], 'det', ARGV[9], 'obs', ARGV[3], 'until', ARGV[4], 'src', ARGV[10])
          redis.call('PEXPIREAT', KEYS[2], ARGV[4])
        end
        redis.call('PUBLISH', ARGV[12], '')
        if tonumber(ARGV[5]) >= tonumber(ARGV[6]) then
          redis.call('DEL', KEYS[3])
          redis.call('HSET', KEYS[3], 'sid', ARGV[7], 'level', ARGV[5], 'obs', ARGV[3])
          return {0, 1, 0}
        end
        if fobs then
          redis.call('DEL', KEYS[3])
          return {0, 2, 0}
        end
        return {0, 0, 0}
        """;

    // KEYS: agent risk, agent freeze, task risk, task freeze. Missing subjects use keys that never exist.
    private const string ViewScript = """
        return {
          redis.call('HMGET', KEYS[1], 'sid', 'level', 'score', 'det', 'obs', 'until', 'src'),
          redis.call('HMGET', KEYS[2], 'sid', 'level', 'obs'),
          redis.call('HMGET', KEYS[3], 'sid', 'level', 'score', 'det', 'obs', 'until', 'src'),
          redis.call('HMGET', KEYS[4], 'sid', 'level', 'obs')
        }
        """;

    // KEYS: risk, freeze, floor. ARGV: now ms, floor until ms, change channel.
    private const string ClearScript = """
        local r = redis.call('HMGET', KEYS[1], 'sid', 'level', 'score', 'det', 'obs', 'until', 'src')
        local f = redis.call('HMGET', KEYS[2], 'sid', 'level', 'obs')
        redis.call('DEL', KEYS[1], KEYS[2])
        redis.call('SET', KEYS[3], ARGV[1], 'PXAT', ARGV[2])
        redis.call('PUBLISH', ARGV[3], '')
        return {r, f}
        """;

    private const int ContainmentOff = 99;

    /// <summary>How long a risk view read from Redis may answer the gate, when no change was announced.</summary>
    public static readonly TimeSpan DefaultViewCacheAge = TimeSpan.FromSeconds(1);

    private readonly IConnectionMultiplexer _redis;
    private readonly RedisKeys _keys;
    private readonly RedisChannel _changes;
    private readonly RiskViewCache _views;

    /// <param name="viewCacheAge">Longest a cached view answers without a change (<see cref="DefaultViewCacheAge"/>); zero reads Redis every time.</param>
    public RedisRiskStore(IConnectionMultiplexer redis, RedisKeys keys, TimeSpan? viewCacheAge = null)
    {
        _redis = redis;
        _keys = keys;
        _changes = RedisChannel.Literal(keys.RiskChannel);
        _views = new RiskViewCache(redis, _changes, viewCacheAge ?? DefaultViewCacheAge);
    }

    public async ValueTask<SignalApplyResult> ApplyAsync(RiskSignal signal, string digest, RiskLevel? containment, DateTimeOffset now, DateTimeOffset keepIdUntil, CancellationToken cancellationToken)
    {
        var (kind, id) = Key(signal.Subject);
        var result = (RedisResult[])(await _redis.GetDatabase().ScriptEvaluateAsync(
            ApplyScript,
            [_keys.Signal(signal.SignalId), _keys.Risk(kind, id), _keys.RiskFreeze(kind, id), _keys.RiskFloor(kind, id)],
            [
                digest,
                Ms(keepIdUntil),
                Ms(signal.ObservedAt),
                Ms(signal.ValidUntil),
                (int)signal.Level,
                containment is { } level ? (int)level : ContainmentOff,
                signal.SignalId,
                signal.Score.ToString("R", CultureInfo.InvariantCulture),
                signal.Detector,
                signal.Source,
                Ms(now),
                _changes.ToString(),
            ]))!;
        _views.Invalidate();
        var status = (int)result[0] switch
        {
            0 => SignalApplyStatus.Applied,
            1 => SignalApplyStatus.Superseded,
            2 => SignalApplyStatus.Duplicate,
            _ => SignalApplyStatus.IdReused,
        };
        var freeze = (int)result[1] switch
        {
            1 => FreezeChange.Frozen,
            2 => FreezeChange.Lifted,
            _ => FreezeChange.None,
        };
        return new SignalApplyResult(status, freeze, (int)result[2] == 1);
    }

    public async ValueTask<RiskView> GetAsync(string? agent, string? taskId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (_views.TryGet(agent, taskId, now.UtcTicks, out var cached))
        {
            // Stored as read; a signal that lapsed since no longer counts.
            return new RiskView(Current(cached.Agent, now), Current(cached.Task, now));
        }

        var generation = _views.Generation;
        RedisKey none = _keys.Risk('-', "-");
        var result = (RedisResult[])(await _redis.GetDatabase().ScriptEvaluateAsync(
            ViewScript,
            [
                agent is null ? none : _keys.Risk('a', agent),
                agent is null ? none : _keys.RiskFreeze('a', agent),
                taskId is null ? none : _keys.Risk('t', taskId),
                taskId is null ? none : _keys.RiskFreeze('t', taskId),
            ],
            flags: CommandFlags.DemandMaster))!;
        var view = new RiskView(State(result[0], result[1], now), State(result[2], result[3], now));
        _views.Keep(agent, taskId, view, generation, now.UtcTicks);
        return view;
    }

    public void Dispose() => _views.Dispose();

    private static RiskState Current(RiskState state, DateTimeOffset now) =>
        state.Current is { } current && current.ValidUntil <= now
            ? state.Freeze is null ? RiskState.Empty : state with { Current = null }
            : state;

    public async ValueTask<RiskState> ClearAsync(RiskSubject subject, DateTimeOffset now, DateTimeOffset floorUntil, CancellationToken cancellationToken)
    {
        var (kind, id) = Key(subject);
        var result = (RedisResult[])(await _redis.GetDatabase().ScriptEvaluateAsync(
            ClearScript,
            [_keys.Risk(kind, id), _keys.RiskFreeze(kind, id), _keys.RiskFloor(kind, id)],
            [Ms(now), Ms(floorUntil), _changes.ToString()]))!;
        _views.Invalidate();
        return State(result[0], result[1], now);
    }

    private static (char Kind, string Id) Key(RiskSubject subject) => (subject.Kind == RiskSubjectKind.Agent ? 'a' : 't', subject.Id);

    private static RiskState State(RedisResult risk, RedisResult freeze, DateTimeOffset now)
    {
        var r = (RedisValue[])risk!;
        var f = (RedisValue[])freeze!;
        RiskRecord? current = null;
        if (!r[0].IsNull)
        {
            var until = At(r[5]);
            if (until > now)
            {
                current = new RiskRecord(r[0]!, (RiskLevel)(int)r[1], (double)r[2], r[3]!, At(r[4]), until, r[6]!);
            }
        }

        var frozen = f[0].IsNull ? null : new FreezeRecord(f[0]!, (RiskLevel)(int)f[1], At(f[2]));
        return current is null && frozen is null ? RiskState.Empty : new RiskState(current, frozen);
    }

    private static DateTimeOffset At(RedisValue ms) => DateTimeOffset.FromUnixTimeMilliseconds((long)ms);

    private static long Ms(DateTimeOffset time) => time.ToUnixTimeMilliseconds();
}
