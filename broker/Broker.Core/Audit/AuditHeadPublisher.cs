using System.Security.Cryptography;
using Microsoft.Extensions.Logging;

namespace Broker.Core.Audit;

/// <summary>
/// Publishes a node's chain head off the host as it advances. The writer only records the newest
/// head (no I/O, no signing on the write path); one loop signs the newest head and sends it,
/// coalescing whatever advanced meanwhile. A stored head ahead of this node's chain, or diverging
/// from it, is reported to <c>onConflict</c>: another writer or a rewound log.
/// </summary>
internal sealed partial class AuditHeadPublisher : IAsyncDisposable
{
    private static readonly TimeSpan DrainBound = TimeSpan.FromSeconds(2);

    private readonly IAuditHeadStore _store;
    private readonly ECDsa _key;
    private readonly string _node;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TimeSpan _retry;
    private readonly TimeSpan _minInterval;
    private readonly Action<AuditHead> _onConflict;
    private readonly SemaphoreSlim _signal = new(0, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private readonly Task _loop;
    private (long Seq, string Hash, long Segment) _latest;
    private long _published = -1;
    private bool _replace;
    private int _disposed;

    public AuditHeadPublisher(IAuditHeadStore store, ECDsa key, string node, TimeProvider time, ILogger logger, TimeSpan retry, bool replaceFirst, Action<AuditHead> onConflict, TimeSpan minInterval = default)
    {
        _minInterval = minInterval;
        _store = store;
        _key = key;
        _node = node;
        _time = time;
        _logger = logger;
        _retry = retry;
        _replace = replaceFirst;
        _onConflict = onConflict;
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>Called by the writer after each durable batch: cheap, never blocks.</summary>
    public void Advance(long seq, string hash, long segment)
    {
        lock (_gate)
        {
            _latest = (seq, hash, segment);
        }

        Wake();
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        // Send the final head (the clean stop's), within a bound: a stop never waits on Redis for long.
        Wake();
        using var bound = new CancellationTokenSource(DrainBound);
        try
        {
            while (Interlocked.Read(ref _published) < Latest().Seq && !bound.IsCancellationRequested && !_loop.IsCompleted)
            {
                await Task.Delay(10, CancellationToken.None);
            }
        }
        finally
        {
            await _stop.CancelAsync();
            await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            _stop.Dispose();
        }
    }

    private (long Seq, string Hash, long Segment) Latest()
    {
        lock (_gate)
        {
            return _latest;
        }
    }

    private void Wake()
    {
        try
        {
            if (_signal.CurrentCount == 0)
            {
                _signal.Release();
            }
        }
        catch (SemaphoreFullException)
        {
            // Already awake.
        }
    }

    private async Task LoopAsync()
    {
        var token = _stop.Token;
        while (!token.IsCancellationRequested)
        {
            try
            {
                await _signal.WaitAsync(token);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var (seq, hash, segment) = Latest();
            if (seq <= Interlocked.Read(ref _published) || hash is null)
            {
                continue;
            }

            var head = AuditHeads.Sign(new AuditHead { Node = _node, Seq = seq, Hash = hash, Segment = segment, Time = _time.GetUtcNow() }, _key);
            try
            {
                var conflict = await _store.PublishAsync(head, _replace, token);
                _replace = false;
                if (conflict is not null)
                {
                    _onConflict(conflict);
                    return;
                }

                Interlocked.Exchange(ref _published, seq);
                if (_minInterval > TimeSpan.Zero && Volatile.Read(ref _disposed) == 0)
                {
                    // Under load every batch moves the head: one signature and one durable Redis
                    // write per interval, not per batch. The newest head is sent after the pause.
                    await Task.Delay(_minInterval, _time, token);
                    Wake();
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                Log.PublishFailed(_logger, seq, ex);
                try
                {
                    await Task.Delay(_retry, _time, token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                Wake();
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 7300, Level = LogLevel.Warning, Message = "Audit chain head seq {Seq} could not be published off the host; retrying (the local log is unaffected)")]
        public static partial void PublishFailed(ILogger logger, long seq, Exception exception);
    }
}
