using System.Globalization;
using System.Text.Json;
using Broker.Core.Approvals;
using StackExchange.Redis;

namespace Broker.Redis;

/// <summary>
/// Approval requests in Redis, shared by every broker node. The request itself is stored once
/// as JSON and never rewritten; votes, decisions and consumption are one Lua script each, so a
/// vote is counted once and an approval is consumed by exactly one caller.
/// </summary>
public sealed class RedisApprovalStore : IApprovalStore, IDisposable
{
    // Hash fields: req (request JSON), st (status), exp (expiry ms), gn (gates), q<i> (quorum of
    // gate i), c<i> (votes toward gate i), v:<approver> ("ms|gate,gate"), by, why, dat (decided
    // ms), tok (token id once consumed). Scripts return {outcome, status}: outcome 0 applied,
    // 1 not found, 2 wrong state, 3 expired, 4 already voted.
    private const string Prelude = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return {1, ''} end
        local st = redis.call('HGET', KEYS[1], 'st')
        local now = tonumber(ARGV[1])
        local live = st == 'pending' or st == 'approved'
        local expired = live and tonumber(redis.call('HGET', KEYS[1], 'exp')) <= now
        """;

    // KEYS: approval, pending index. ARGV: now ms, approver, gate indexes "0,2", id.
    private const string ApproveScript = Prelude + "\n" + """
        if expired then return {3, 'expired'} end
        if st ~= 'pending' then return {2, st} end
        if redis.call('HEXISTS', KEYS[1], 'v:' .. ARGV[2]) == 1 then return {4, st} end
        redis.call('HSET', KEYS[1], 'v:' .. ARGV[2], ARGV[1] .. '|' .. ARGV[3])
        for g in string.gmatch(ARGV[3], '%d+') do redis.call('HINCRBY', KEYS[1], 'c' .. g, 1) end
        local n = tonumber(redis.call('HGET', KEYS[1], 'gn'))
        for i = 0, n - 1 do
          if tonumber(redis.call('HGET', KEYS[1], 'c' .. i) or '0') < tonumber(redis.call('HGET', KEYS[1], 'q' .. i)) then
            return {0, 'pending'}
          end
        end
        -- Stays in the index until used, denied or expired, so an approval nobody uses is swept too.
        redis.call('HSET', KEYS[1], 'st', 'approved', 'dat', ARGV[1])
        return {0, 'approved'}
        """;

    // KEYS: approval, pending index. ARGV: now ms, approver, reason, id.
    private const string DenyScript = Prelude + "\n" + """
        if expired then return {3, 'expired'} end
        if not live then return {2, st} end
        redis.call('HSET', KEYS[1], 'st', 'denied', 'by', ARGV[2], 'why', ARGV[3], 'dat', ARGV[1])
        redis.call('ZREM', KEYS[2], ARGV[4])
        return {0, 'denied'}
        """;

    // KEYS: approval, pending index. ARGV: now ms, id.
    private const string ExpireScript = """
        -- A request whose hash outlived its retention leaves the pending index too.
        if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('ZREM', KEYS[2], ARGV[2]) end
        """ + "\n" + Prelude + "\n" + """
        if not expired then return {2, st} end
        redis.call('HSET', KEYS[1], 'st', 'expired', 'dat', ARGV[1])
        redis.call('ZREM', KEYS[2], ARGV[2])
        return {0, 'expired'}
        """;

    // KEYS: approval, pending index. ARGV: now ms, token id, id.
    private const string ConsumeScript = Prelude + "\n" + """
        if expired then return {3, 'expired'} end
        if st ~= 'approved' then return {2, st} end
        redis.call('HSET', KEYS[1], 'st', 'consumed', 'tok', ARGV[2])
        redis.call('ZREM', KEYS[2], ARGV[3])
        return {0, 'consumed'}
        """;

    private readonly IConnectionMultiplexer _redis;
    private readonly RedisKeys _keys;
    private readonly RedisDurableWrites _durable;
    private readonly RedisChannel _changes;

    public RedisApprovalStore(IConnectionMultiplexer redis, RedisKeys keys, RedisDurableWrites durable)
    {
        _redis = redis;
        _keys = keys;
        _durable = durable;
        _changes = RedisChannel.Literal(keys.ApprovalChannel);

        // A hint only: waiters re-read the request, and still poll now and then.
        redis.GetSubscriber().Subscribe(_changes, OnChanged);
    }

    public event Action<string>? Changed;

    public async ValueTask<bool> CreateAsync(ApprovalRequest request, DateTimeOffset keepUntil, CancellationToken cancellationToken)
    {
        var key = _keys.Approval(request.Id);
        var fields = new List<HashEntry>
        {
            new("req", JsonSerializer.Serialize(request)),
            new("st", "pending"),
            new("exp", Ms(request.ExpiresAt)),
            new("gn", request.Gates.Count),
        };
        for (var i = 0; i < request.Gates.Count; i++)
        {
            fields.Add(new HashEntry("q" + i.ToString(CultureInfo.InvariantCulture), request.Gates[i].Quorum));
        }

        bool created;
        var confirmed = true;
        try
        {
            created = await _durable.WriteAsync("approval request", db =>
            {
                var tx = db.CreateTransaction();
                tx.AddCondition(Condition.KeyNotExists(key));
                _ = tx.HashSetAsync(key, [.. fields]);
                _ = tx.KeyExpireAsync(key, keepUntil.UtcDateTime);
                _ = tx.SortedSetAddAsync(_keys.ApprovalsPending, request.Id, Ms(request.ExpiresAt));
                return tx.ExecuteAsync();
            });
        }
        catch (ReplicationUnconfirmedException ex)
        {
            created = (bool)ex.Result!;
            confirmed = false;
        }

        if (!created)
        {
            throw new InvalidOperationException("Approval id collision.");
        }

        return confirmed;
    }

    public async ValueTask<ApprovalRecord?> GetAsync(string id, CancellationToken cancellationToken)
    {
        var entries = await _redis.GetDatabase().HashGetAllAsync(_keys.Approval(id), CommandFlags.DemandMaster);
        return entries.Length == 0 ? null : Parse(entries);
    }

    public async ValueTask<IReadOnlyList<ApprovalRecord>> ListPendingAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken)
    {
        var db = _redis.GetDatabase();
        var ids = await db.SortedSetRangeByScoreAsync(_keys.ApprovalsPending, Ms(now), double.PositiveInfinity, Exclude.Start, skip: 0, take: limit, flags: CommandFlags.DemandMaster);
        var records = new List<ApprovalRecord>(ids.Length);
        foreach (var id in ids)
        {
            if (await GetAsync(id!, cancellationToken) is { } record && record.StatusAt(now) == ApprovalStatus.Pending)
            {
                records.Add(record);
            }
        }

        return records;
    }

    public async ValueTask<IReadOnlyList<string>> ListLapsedAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken)
    {
        // The index holds requests until they are used, denied or marked expired (approved ones too).
        var ids = await _redis.GetDatabase().SortedSetRangeByScoreAsync(_keys.ApprovalsPending, double.NegativeInfinity, Ms(now), Exclude.None, skip: 0, take: limit, flags: CommandFlags.DemandMaster);
        return [.. ids.Select(id => id.ToString())];
    }

    public ValueTask<ApprovalChange> ApproveAsync(string id, string approver, IReadOnlyList<int> gates, DateTimeOffset now, CancellationToken cancellationToken) =>
        RunAsync(id, ApproveScript, [_keys.Approval(id), _keys.ApprovalsPending], [Ms(now), approver, string.Join(',', gates), id]);

    public ValueTask<ApprovalChange> DenyAsync(string id, string approver, string reason, DateTimeOffset now, CancellationToken cancellationToken) =>
        RunAsync(id, DenyScript, [_keys.Approval(id), _keys.ApprovalsPending], [Ms(now), approver, reason, id]);

    public ValueTask<ApprovalChange> ExpireAsync(string id, DateTimeOffset now, CancellationToken cancellationToken) =>
        RunAsync(id, ExpireScript, [_keys.Approval(id), _keys.ApprovalsPending], [Ms(now), id]);

    public ValueTask<ApprovalChange> ConsumeAsync(string id, string tokenId, DateTimeOffset now, CancellationToken cancellationToken) =>
        RunAsync(id, ConsumeScript, [_keys.Approval(id), _keys.ApprovalsPending], [Ms(now), tokenId, id]);

    private async ValueTask<ApprovalChange> RunAsync(string id, string script, RedisKey[] keys, RedisValue[] args)
    {
        RedisResult[] result;
        var confirmed = true;
        try
        {
            result = (RedisResult[])(await _durable.WriteAsync("approval decision", db => db.ScriptEvaluateAsync(script, keys, args)))!;
        }
        catch (ReplicationUnconfirmedException ex)
        {
            // In force on the primary, not yet on replicas: the caller audits it and says so.
            result = (RedisResult[])((RedisResult)ex.Result!)!;
            confirmed = false;
        }

        var outcome = (int)result[0] switch
        {
            0 => ApprovalChangeStatus.Applied,
            1 => ApprovalChangeStatus.NotFound,
            2 => ApprovalChangeStatus.WrongState,
            3 => ApprovalChangeStatus.Expired,
            _ => ApprovalChangeStatus.AlreadyVoted,
        };
        var status = (string?)result[1];
        if (outcome != ApprovalChangeStatus.Applied)
        {
            // Nothing was written, so there is nothing to confirm.
            return new ApprovalChange(outcome, string.IsNullOrEmpty(status) ? null : ApprovalStatusNames.Parse(status));
        }

        await _redis.GetSubscriber().PublishAsync(_changes, id, CommandFlags.FireAndForget);

        // A vote, denial or use lost in a failover could let a denied request be approved again
        // or a single-use approval be used twice: the caller is told when it is not confirmed.
        return new ApprovalChange(outcome, string.IsNullOrEmpty(status) ? null : ApprovalStatusNames.Parse(status), confirmed);
    }

    // At shutdown the handler is removed at once; the server-side unsubscribe need not be waited
    // for (a busy or gone Redis would otherwise fail the host's disposal).
    public void Dispose() => _redis.GetSubscriber().Unsubscribe(_changes, OnChanged, CommandFlags.FireAndForget);

    private void OnChanged(RedisChannel channel, RedisValue id) => Changed?.Invoke(id.ToString());

    private static ApprovalRecord Parse(HashEntry[] entries)
    {
        var fields = entries.ToDictionary(e => (string)e.Name!, e => e.Value, StringComparer.Ordinal);
        var request = JsonSerializer.Deserialize<ApprovalRequest>((string)fields["req"]!) ?? throw new FormatException("Empty approval request.");
        var votes = new List<ApprovalVote>();
        foreach (var (name, value) in fields)
        {
            if (name.StartsWith("v:", StringComparison.Ordinal))
            {
                var text = (string)value!;
                var bar = text.IndexOf('|', StringComparison.Ordinal);
                votes.Add(new ApprovalVote(name[2..], At(long.Parse(text.AsSpan(0, bar), CultureInfo.InvariantCulture))));
            }
        }

        return new ApprovalRecord(
            request,
            ApprovalStatusNames.Parse((string)fields["st"]!),
            votes.OrderBy(v => v.At).ToArray(),
            fields.TryGetValue("by", out var by) ? (string?)by : null,
            fields.TryGetValue("why", out var why) ? (string?)why : null,
            fields.TryGetValue("dat", out var dat) ? At((long)dat) : null,
            fields.TryGetValue("tok", out var tok) ? (string?)tok : null);
    }

    private static DateTimeOffset At(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    private static long Ms(DateTimeOffset time) => time.ToUnixTimeMilliseconds();
}
