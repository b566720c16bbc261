using System.Text;
using Broker.Core.Audit;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Broker.Redis;

/// <summary>
/// Mirrors each durable audit record to the Redis stream <c>{prefix}audit</c> (field <c>r</c>:
/// the line exactly as written, so its hash still chains), bounded with <c>XADD MAXLEN ~ N</c>.
/// A cluster-wide view for tail and SIEM pickup, not the record: sends are asynchronous and a
/// failure is logged and counted, never reported to the request whose record it was.
/// </summary>
public sealed partial class RedisAuditMirror : IAuditMirror
{
    public const int DefaultMaxLength = 1_000_000;

    private readonly IConnectionMultiplexer _redis;
    private readonly RedisKeys _keys;
    private readonly int _maxLength;
    private readonly ILogger _logger;
    private long _sent;
    private long _failures;

    public RedisAuditMirror(IConnectionMultiplexer redis, RedisKeys keys, ILogger<RedisAuditMirror> logger, int maxLength = DefaultMaxLength)
    {
        _redis = redis;
        _keys = keys;
        _logger = logger;
        _maxLength = maxLength > 0 ? maxLength : DefaultMaxLength;
    }

    /// <summary>Records the stream acknowledged.</summary>
    public long Sent => Interlocked.Read(ref _sent);

    /// <summary>Records that could not be mirrored (they are in the local log all the same).</summary>
    public long Failures => Interlocked.Read(ref _failures);

    public void Publish(ReadOnlyMemory<byte> lines)
    {
        var db = _redis.GetDatabase();
        var span = lines.Span;
        while (!span.IsEmpty)
        {
            var end = span.IndexOf((byte)'\n');
            var line = end < 0 ? span : span[..end];
            span = end < 0 ? [] : span[(end + 1)..];
            if (line.IsEmpty)
            {
                continue;
            }

            // One connection keeps commands in order, so the stream holds records in chain order.
            Task<RedisValue> sent;
            try
            {
                sent = db.StreamAddAsync(_keys.AuditStream, "r", Encoding.UTF8.GetString(line), maxLength: _maxLength, useApproximateMaxLength: true);
            }
            catch (Exception ex)
            {
                Failed(ex);
                continue;
            }

            _ = sent.ContinueWith(
                static (task, state) =>
                {
                    var mirror = (RedisAuditMirror)state!;
                    if (task.IsCompletedSuccessfully)
                    {
                        Interlocked.Increment(ref mirror._sent);
                    }
                    else
                    {
                        mirror.Failed(task.Exception?.GetBaseException() ?? new TaskCanceledException());
                    }
                },
                this,
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
        }
    }

    private void Failed(Exception ex)
    {
        // Log the first failure and then every 1000th, so an outage does not flood the log.
        if (Interlocked.Increment(ref _failures) % 1000 == 1)
        {
            Log.MirrorFailed(_logger, Failures, ex);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 6005, Level = LogLevel.Warning, Message = "Audit record not mirrored to Redis ({Failures} so far); it is durable in the local log")]
        public static partial void MirrorFailed(ILogger logger, long failures, Exception exception);
    }
}
