using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Broker.Core.Ssf.Transmitter;
using StackExchange.Redis;

namespace Broker.Redis;

/// <summary>
/// Shared Signals streams in Redis, shared by every node: a hash per stream (configuration,
/// owner, revocation cursor), a set of ids per owner (caps and listing), and per stream a Redis
/// stream of undelivered SETs with a jti index for acknowledgement. Every change is one Lua
/// script, so a cap, the cursor check or a trim never races another node.
/// </summary>
public sealed class RedisSsfStreamStore : ISsfStreamStore, IDisposable
{
    // Drops SETs past the retention (older than ARGV cutoff ms), then the oldest beyond the cap; counts what the cap dropped.
    private const string TrimFunction = """
        local function trim(q, idx, hash, maxLen, cutoff)
          local old = redis.call('XRANGE', q, '-', '(' .. cutoff .. '-0', 'COUNT', 1000)
          for _, e in ipairs(old) do redis.call('HDEL', idx, e[2][2]); redis.call('XDEL', q, e[1]) end
          local dropped = 0
          local len = redis.call('XLEN', q)
          if len > maxLen then
            local over = redis.call('XRANGE', q, '-', '+', 'COUNT', len - maxLen)
            for _, e in ipairs(over) do redis.call('HDEL', idx, e[2][2]); redis.call('XDEL', q, e[1]) end
            dropped = #over
            redis.call('HINCRBY', hash, 'dropped', dropped)
          end
          return dropped
        end
        """;

    private const string CreateScript = """
        if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 1 end
        if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[5]) then return 2 end
        redis.call('SADD', KEYS[1], ARGV[1])
        redis.call('SADD', KEYS[2], ARGV[1])
        redis.call('HSET', KEYS[3], 'c', ARGV[3], 'o', ARGV[2], 'cur', '0')
        return 0
        """;

    private const string ListOwnerScript = """
        local out = {}
        for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
          local c = redis.call('HGET', ARGV[1] .. id, 'c')
          if c then out[#out + 1] = c end
        end
        return out
        """;

    private const string ListAllScript = """
        local out = {}
        for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
          local row = redis.call('HMGET', ARGV[1] .. id, 'c', 'cur')
          if row[1] then out[#out + 1] = row[1]; out[#out + 1] = row[2] or '0' end
        end
        return out
        """;

    private const string UpdateScript = """
        if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return 0 end
        redis.call('HSET', KEYS[1], 'c', ARGV[2])
        return 1
        """;

    private const string DeleteScript = """
        if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return 0 end
        redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[6])
        redis.call('SREM', KEYS[4], ARGV[2])
        redis.call('SREM', KEYS[5], ARGV[2])
        return 1
        """;

    // ARGV: max, cutoff ms, stream id, mode ('r': in revocation order past the cursor; 'v': as is), then (log id, jti, SET) triples.
    private const string EnqueueScript = TrimFunction + "\n" + """
        if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0} end
        local function parse(id)
          local a, b = string.match(id, '^(%d+)-(%d+)$')
          if a then return tonumber(a), tonumber(b) end
          return tonumber(id) or 0, 0
        end
        local function after(x, y)
          local xa, xb = parse(x)
          local ya, yb = parse(y)
          return xa > ya or (xa == ya and xb > yb)
        end
        local cur = redis.call('HGET', KEYS[1], 'cur') or '0'
        local added = 0
        for i = 5, #ARGV, 3 do
          if ARGV[4] == 'v' or after(ARGV[i], cur) then
            if ARGV[i + 2] ~= '' then
              local xid = redis.call('XADD', KEYS[2], '*', 'j', ARGV[i + 1], 's', ARGV[i + 2])
              redis.call('HSET', KEYS[3], ARGV[i + 1], xid)
              added = added + 1
            end
            if ARGV[4] == 'r' then cur = ARGV[i] end
          end
        end
        if ARGV[4] == 'r' then redis.call('HSET', KEYS[1], 'cur', cur) end
        local dropped = trim(KEYS[2], KEYS[3], KEYS[1], tonumber(ARGV[1]), ARGV[2])
        if added > 0 then redis.call('PUBLISH', KEYS[4], ARGV[3]) end
        return {added, dropped}
        """;

    // ARGV: max, cutoff ms, count. Returns false for a missing stream, else up to count + 1 entries (the extra says "more").
    private const string PendingScript = TrimFunction + "\n" + """
        if redis.call('EXISTS', KEYS[1]) == 0 then return false end
        trim(KEYS[2], KEYS[3], KEYS[1], tonumber(ARGV[1]), ARGV[2])
        return redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', tonumber(ARGV[3]) + 1)
        """;

    private const string AckScript = """
        local n = 0
        for i = 1, #ARGV do
          local xid = redis.call('HGET', KEYS[2], ARGV[i])
          if xid then
            n = n + redis.call('XDEL', KEYS[1], xid)
            redis.call('HDEL', KEYS[2], ARGV[i])
          end
        end
        return n
        """;

    private const string LeaseScript = """
        local holder = redis.call('GET', KEYS[1])
        if holder and holder ~= ARGV[1] then return 0 end
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        return 1
        """;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly IConnectionMultiplexer _redis;
    private readonly RedisKeys _keys;
    private readonly RedisChannel _channel;
    private readonly ISubscriber _subscriber;

    public RedisSsfStreamStore(IConnectionMultiplexer redis, RedisKeys keys)
    {
        _redis = redis;
        _keys = keys;
        _channel = RedisChannel.Literal(keys.SsfChannel);
        _subscriber = redis.GetSubscriber();
        _subscriber.Subscribe(_channel, (_, message) => Enqueued?.Invoke(message.ToString()));
    }

    public event Action<string>? Enqueued;

    private IDatabase Db => _redis.GetDatabase();

    public async Task<SsfCreateResult> CreateAsync(SsfStream stream, int perOwner, int total, CancellationToken cancellationToken)
    {
        var result = (int)await Db.ScriptEvaluateAsync(
            CreateScript,
            [_keys.SsfStreams, Owner(stream.Owner), _keys.SsfStream(stream.Id)],
            [stream.Id, stream.Owner, Serialize(stream), perOwner, total]);
        return result switch
        {
            0 => SsfCreateResult.Created,
            1 => SsfCreateResult.OwnerLimitReached,
            _ => SsfCreateResult.LimitReached,
        };
    }

    public async Task<SsfStream?> GetAsync(string owner, string streamId, CancellationToken cancellationToken)
    {
        var row = await Db.HashGetAsync(_keys.SsfStream(streamId), ["c", "o"]);
        return row[0].HasValue && row[1] == owner ? Deserialize(row[0]!) : null;
    }

    public async Task<IReadOnlyList<SsfStream>> ListAsync(string owner, CancellationToken cancellationToken)
    {
        var rows = (RedisResult[])(await Db.ScriptEvaluateAsync(ListOwnerScript, [Owner(owner)], [_keys.SsfStreamPrefix]))!;
        return [.. rows.Select(r => Deserialize(r.ToString())).Where(s => s.Owner == owner).OrderBy(s => s.CreatedAt)];
    }

    public async Task<IReadOnlyList<(SsfStream Stream, string Cursor)>> ListAllAsync(CancellationToken cancellationToken)
    {
        var rows = (RedisResult[])(await Db.ScriptEvaluateAsync(ListAllScript, [_keys.SsfStreams], [_keys.SsfStreamPrefix]))!;
        var streams = new List<(SsfStream, string)>(rows.Length / 2);
        for (var i = 0; i + 1 < rows.Length; i += 2)
        {
            streams.Add((Deserialize(rows[i].ToString()), rows[i + 1].ToString()));
        }

        return streams;
    }

    public async Task<bool> UpdateAsync(SsfStream stream, CancellationToken cancellationToken) =>
        (int)await Db.ScriptEvaluateAsync(UpdateScript, [_keys.SsfStream(stream.Id)], [stream.Owner, Serialize(stream)]) == 1;

    public async Task<bool> DeleteAsync(string owner, string streamId, CancellationToken cancellationToken) =>
        (int)await Db.ScriptEvaluateAsync(
            DeleteScript,
            [_keys.SsfStream(streamId), _keys.SsfQueue(streamId), _keys.SsfQueueIndex(streamId), _keys.SsfStreams, Owner(owner), _keys.SsfPushLease(streamId)],
            [owner, streamId]) == 1;

    public Task<SsfEnqueued> EnqueueRevocationsAsync(string streamId, IReadOnlyList<SsfQueuedRevocation> events, SsfQueueLimits limits, CancellationToken cancellationToken) =>
        EnqueueAsync(streamId, [.. Header(streamId, limits, "r"), .. events.SelectMany(e => new RedisValue[] { e.LogId, e.Jti, e.Set ?? "" })]);

    public Task<SsfEnqueued> EnqueueAsync(string streamId, string jti, string set, SsfQueueLimits limits, CancellationToken cancellationToken) =>
        EnqueueAsync(streamId, [.. Header(streamId, limits, "v"), "", jti, set]);

    public async Task<SsfPending> PendingAsync(string streamId, int max, SsfQueueLimits limits, CancellationToken cancellationToken)
    {
        var result = await Db.ScriptEvaluateAsync(
            PendingScript,
            [_keys.SsfStream(streamId), _keys.SsfQueue(streamId), _keys.SsfQueueIndex(streamId)],
            [limits.MaxEvents, Cutoff(limits), max]);
        if (result.IsNull || result.Resp2Type != ResultType.Array)
        {
            throw SsfTransmitterException.NotFound(streamId);
        }

        var rows = (RedisResult[])result!;
        var events = new List<(string, string)>(Math.Min(rows.Length, max));
        foreach (var row in rows.Take(max))
        {
            var fields = (RedisResult[])((RedisResult[])row!)[1]!;
            events.Add((fields[1].ToString(), fields[3].ToString()));
        }

        return new SsfPending(events, rows.Length > max);
    }

    public async Task<int> AcknowledgeAsync(string streamId, IReadOnlyCollection<string> jtis, CancellationToken cancellationToken) =>
        jtis.Count == 0
            ? 0
            : (int)await Db.ScriptEvaluateAsync(AckScript, [_keys.SsfQueue(streamId), _keys.SsfQueueIndex(streamId)], [.. jtis.Select(j => (RedisValue)j)]);

    public async Task<bool> TryLeasePushAsync(string streamId, string node, TimeSpan lease, CancellationToken cancellationToken) =>
        (int)await Db.ScriptEvaluateAsync(LeaseScript, [_keys.SsfPushLease(streamId)], [node, (long)lease.TotalMilliseconds]) == 1;

    // Never block or fail disposal on a busy or gone Redis.
    public void Dispose() => _subscriber.Unsubscribe(_channel, null, CommandFlags.FireAndForget);

    private async Task<SsfEnqueued> EnqueueAsync(string streamId, RedisValue[] args)
    {
        var result = (RedisResult[])(await Db.ScriptEvaluateAsync(
            EnqueueScript,
            [_keys.SsfStream(streamId), _keys.SsfQueue(streamId), _keys.SsfQueueIndex(streamId), _keys.SsfChannel],
            args))!;
        var added = (int)result[0];
        return added < 0 ? new SsfEnqueued(0, 0, Gone: true) : new SsfEnqueued(added, (int)result[1]);
    }

    private static RedisValue[] Header(string streamId, SsfQueueLimits limits, string mode) => [limits.MaxEvents, Cutoff(limits), streamId, mode];

    private static string Cutoff(SsfQueueLimits limits) => (limits.Now - limits.Retention).ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture);

    private RedisKey Owner(string owner) => _keys.SsfOwnerStreams(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(owner))));

    private static string Serialize(SsfStream stream) => JsonSerializer.Serialize(stream, Json);

    private static SsfStream Deserialize(string json) => JsonSerializer.Deserialize<SsfStream>(json, Json) ?? throw new FormatException("Empty stream record.");
}
