using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Broker.Core.Revocation;
using Broker.Revocation;
using StackExchange.Redis;

namespace Broker.Redis;

public sealed class RedisRevocationOptions
{
    /// <summary>
    /// Replicas that must acknowledge a write before the broker answers OK (Redis WAIT):
    /// revocations, the epoch, the freeze and approval decisions. 0: the primary alone.
    /// </summary>
    public int MinReplicas { get; set; }

    /// <summary>How long WAIT may take before the write is reported as not durable.</summary>
    public TimeSpan ReplicaTimeout { get; set; } = TimeSpan.FromMilliseconds(500);
}

/// <summary>
/// The revocation log as a Redis stream, read by every node from its last id (so a reconnect
/// catches up; pub/sub only says "read now"). An epoch key marks the stream as intact: after a
/// restart that lost data, the key is gone and every node fails closed until it is restored.
/// </summary>
public sealed class RedisRevocationStore : IRevocationStore, IDisposable
{
    private const string AppendScript = """
        if redis.call('EXISTS', KEYS[2]) == 0 then return redis.error_reply('EPOCH_MISSING') end
        local ids = {}
        for i = 1, #ARGV do
          ids[i] = redis.call('XADD', KEYS[1], '*', 'e', ARGV[i])
        end
        redis.call('PUBLISH', KEYS[3], ids[#ids])
        return ids
        """;

    private const string ReadScript = """
        -- '' for a missing epoch: Lua's false would arrive as a boolean under RESP3, not as nil.
        local epoch = redis.call('GET', KEYS[2]) or ''
        local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
        local freeze = redis.call('GET', KEYS[3]) or ''
        return {epoch, entries, freeze}
        """;

    // ARGV[2] is the cut-off; any further arguments are revocations carried over from before the loss.
    private const string RestoreScript = """
        redis.call('SET', KEYS[2], ARGV[1])
        local id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[2])
        for i = 3, #ARGV do
          redis.call('XADD', KEYS[1], '*', 'e', ARGV[i])
        end
        redis.call('PUBLISH', KEYS[3], id)
        return id
        """;

    private readonly IConnectionMultiplexer _redis;
    private readonly RedisDurableWrites _durable;
    private readonly RedisKey _stream;
    private readonly RedisKey _epoch;
    private readonly RedisKey _freeze;
    private readonly RedisChannel _notify;
    private readonly ISubscriber _subscriber;

    public RedisRevocationStore(IConnectionMultiplexer redis, RedisKeys keys, RedisDurableWrites durable)
    {
        _redis = redis;
        _durable = durable;
        _stream = keys.RevocationStream;
        _epoch = keys.RevocationEpoch;
        _freeze = keys.IssuanceFreeze;
        _notify = RedisChannel.Literal(keys.RevocationChannel);
        _subscriber = redis.GetSubscriber();
        _subscriber.Subscribe(_notify, (_, _) => Appended?.Invoke());
    }

    public event Action? Appended;

    public async Task<IReadOnlyList<RevocationEntry>> AppendAsync(IReadOnlyList<RevocationDraft> drafts, CancellationToken cancellationToken)
    {
        try
        {
            return Entries(drafts, await AppendRowsAsync("revocation", [.. drafts.Select(d => (RedisValue)RevocationJson.Serialize(d))]));
        }
        catch (ReplicationUnconfirmedException ex)
        {
            throw new RevocationUnconfirmedException(Entries(drafts, (RedisResult)ex.Result!));
        }
    }

    // A row the replicas did not confirm throws on (ReplicationUnconfirmedException), so the move
    // is not written: after a failover, a node can confirm the phase left again on the new
    // primary, and only this row would tell it the task moved.
    public Task AnnounceAsync(PhaseMove move, CancellationToken cancellationToken) =>
        AppendRowsAsync("phase move", [RevocationJson.Serialize(move)]);

    /// <summary>Appends stored rows in one step, once the epoch is there; returns their ids.</summary>
    private async Task<RedisResult> AppendRowsAsync(string what, RedisValue[] rows)
    {
        try
        {
            return await _durable.WriteAsync(what, db => db.ScriptEvaluateAsync(AppendScript, [_stream, _epoch, _notify.ToString()], rows));
        }
        catch (RedisServerException ex) when (ex.Message.Contains("EPOCH_MISSING", StringComparison.Ordinal))
        {
            throw new RevocationStateLostException();
        }
    }

    private static RevocationEntry Entry(RevocationDraft draft, RedisResult id) =>
        new(id.ToString(), draft.Selector, draft.Actor, draft.Reason, draft.RevokedAt, draft.ExpiresAt);

    private static List<RevocationEntry> Entries(IReadOnlyList<RevocationDraft> drafts, RedisResult appended)
    {
        var ids = (RedisResult[])appended!;
        return drafts.Select((d, i) => new RevocationEntry(ids[i].ToString(), d.Selector, d.Actor, d.Reason, d.RevokedAt, d.ExpiresAt)).ToList();
    }

    public async Task<RevocationPage> ReadAfterAsync(string? afterId, int max, CancellationToken cancellationToken)
    {
        var start = afterId is null ? "-" : "(" + afterId;
        // From the primary only: a replica may lack entries that other replicas acknowledged, and
        // a node reading it would count itself current while missing them. No primary, no read,
        // and the node turns stale (fails closed) instead.
        var result = (RedisResult[])(await _redis.GetDatabase().ScriptEvaluateAsync(
            ReadScript,
            [_stream, _epoch, _freeze],
            [start, max],
            CommandFlags.DemandMaster))!;
        var epoch = result[0].ToString() is { Length: > 0 } value ? value : null;
        var rows = (RedisResult[])result[1]!;
        var entries = new List<RevocationEntry>(rows.Length);
        List<PhaseMove>? moves = null;
        string? lastId = null;
        foreach (var rowResult in rows)
        {
            var row = (RedisResult[])rowResult!;
            lastId = row[0].ToString();
            var fields = (RedisResult[])row[1]!;
            var (entry, move) = RevocationJson.Deserialize(lastId, fields[1].ToString());
            if (move is not null)
            {
                (moves ??= []).Add(move);
            }
            else
            {
                entries.Add(entry!);
            }
        }

        var freeze = result[2].ToString() is { Length: > 0 } frozen ? JsonSerializer.Deserialize<IssuanceFreeze>(frozen) : null;
        return new RevocationPage(entries, epoch, freeze, moves ?? [], lastId, rows.Length);
    }

    public async Task<(string Epoch, RevocationEntry Cutoff)> RestoreEpochAsync(RevocationDraft cutoff, IReadOnlyList<RevocationDraft> carried, CancellationToken cancellationToken)
    {
        RedisValue[] args = [Guid.NewGuid().ToString("N"), RevocationJson.Serialize(cutoff), .. carried.Select(d => (RedisValue)RevocationJson.Serialize(d))];
        var epoch = args[0].ToString();
        RedisResult result;
        try
        {
            result = await _durable.WriteAsync("revocation epoch", db => db.ScriptEvaluateAsync(
                RestoreScript,
                [_stream, _epoch, _notify.ToString()],
                args));
        }
        catch (ReplicationUnconfirmedException ex)
        {
            throw new RevocationUnconfirmedException([Entry(cutoff, (RedisResult)ex.Result!)]);
        }

        return (epoch, Entry(cutoff, result));
    }

    public async Task SetFreezeAsync(IssuanceFreeze? freeze, CancellationToken cancellationToken)
    {
        await _durable.WriteAsync("freeze", db => freeze is null
            ? db.KeyDeleteAsync(_freeze)
            : db.StringSetAsync(_freeze, JsonSerializer.Serialize(freeze)));
        await _subscriber.PublishAsync(_notify, "freeze");
    }

    public async Task TrimAsync(DateTimeOffset olderThan, CancellationToken cancellationToken) =>
        await _redis.GetDatabase().ExecuteAsync("XTRIM", _stream, "MINID", "~", olderThan.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture) + "-0");

    // As for approvals: never block or fail disposal on a busy or gone Redis.
    public void Dispose() => _subscriber.Unsubscribe(_notify, null, CommandFlags.FireAndForget);
}

/// <summary>The stored form of a revocation or a phase move (one JSON field per stream entry).</summary>
internal static class RevocationJson
{
    /// <summary>
    /// A phase move is stored as a task-phase revocation that expired in 1970, marked
    /// <c>Move</c>: a node of an earlier release, which does not know the mark, skips it as an
    /// expired entry instead of failing its read (or revoking the phase).
    /// </summary>
    public static string Serialize(PhaseMove move) => JsonSerializer.Serialize(new Stored(
        nameof(RevocationKind.TaskPhase),
        move.TaskId,
        move.PhaseLeft,
        null,
        Revoker.BrokerActor,
        "phase move (revokes nothing)",
        move.At.ToUnixTimeMilliseconds(),
        0,
        Move: true));

    public static string Serialize(RevocationDraft draft) => JsonSerializer.Serialize(new Stored(
        draft.Selector.Kind.ToString(),
        draft.Selector.Value,
        draft.Selector.Phase,
        draft.Selector.Before?.ToUnixTimeMilliseconds(),
        draft.Actor,
        draft.Reason,
        draft.RevokedAt.ToUnixTimeMilliseconds(),
        draft.ExpiresAt.ToUnixTimeMilliseconds()));

    public static (RevocationEntry? Entry, PhaseMove? Move) Deserialize(string id, string json)
    {
        var s = JsonSerializer.Deserialize<Stored>(json) ?? throw new FormatException("Empty revocation entry.");
        if (s.Move == true)
        {
            return (null, new PhaseMove(s.Value, s.Phase ?? throw new FormatException("A phase move without its phase."), DateTimeOffset.FromUnixTimeMilliseconds(s.At)));
        }

        var selector = new RevocationSelector(
            Enum.Parse<RevocationKind>(s.Kind),
            s.Value,
            s.Phase,
            s.Before is { } before ? DateTimeOffset.FromUnixTimeMilliseconds(before) : null);
        return (new RevocationEntry(id, selector, s.Actor, s.Reason, DateTimeOffset.FromUnixTimeMilliseconds(s.At), DateTimeOffset.FromUnixTimeMilliseconds(s.Exp)), null);
    }

    private sealed record Stored(
        string Kind,
        string Value,
        string? Phase,
        long? Before,
        string Actor,
        string Reason,
        long At,
        long Exp,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? Move = null);
}
