using Broker.Core.Risk;
using StackExchange.Redis;

namespace Broker.Redis;

/// <summary>
/// The telemetry stream in Redis (<c>{prefix}telemetry</c>), shared by every node so a tail sees
/// signals reported anywhere. Bounded (approximate MAXLEN): retention is the telemetry
/// pipeline's job, not the broker's. Also writes the node's telemetry file when one is given.
/// </summary>
public sealed class RedisTelemetrySink : ITelemetrySink, ITelemetryReader
{
    public const int DefaultMaxLength = 100_000;

    private readonly IConnectionMultiplexer _redis;
    private readonly RedisKeys _keys;
    private readonly ITelemetrySink? _file;
    private readonly int _maxLength;

    public RedisTelemetrySink(IConnectionMultiplexer redis, RedisKeys keys, ITelemetrySink? file = null, int maxLength = DefaultMaxLength)
    {
        _redis = redis;
        _keys = keys;
        _file = file;
        _maxLength = maxLength;
    }

    public async ValueTask AppendAsync(TelemetryRecord record, CancellationToken cancellationToken)
    {
        var line = record.ToJson();
        var stream = _redis.GetDatabase().StreamAddAsync(_keys.TelemetryStream, "r", line, maxLength: _maxLength, useApproximateMaxLength: true);
        if (_file is not null)
        {
            await _file.AppendAsync(record, cancellationToken);
        }

        await stream;
    }

    public async ValueTask<TelemetryPage> ReadAsync(string? after, int limit, CancellationToken cancellationToken)
    {
        var db = _redis.GetDatabase();
        StreamEntry[] entries;
        if (after is null)
        {
            entries = await db.StreamRangeAsync(_keys.TelemetryStream, "-", "+", limit, Order.Descending);
            Array.Reverse(entries);
        }
        else
        {
            entries = await db.StreamRangeAsync(_keys.TelemetryStream, "(" + after, "+", limit);
        }

        var records = new List<TelemetryRecord>(entries.Length);
        foreach (var entry in entries)
        {
            if (entry["r"] is { IsNull: false } value)
            {
                records.Add(TelemetryRecord.FromJson(value!));
            }
        }

        return new TelemetryPage(records, entries.Length > 0 ? entries[^1].Id! : after ?? "0-0");
    }
}
