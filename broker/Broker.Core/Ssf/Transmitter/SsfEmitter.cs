using Broker.Core.Revocation;
using Broker.Revocation;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Broker.Core.Ssf.Transmitter;

/// <summary>
/// Turns revocation log entries into SETs on every stream. Every node runs it: when its feed
/// applies entries (and at least every poll interval), it offers each stream the revocations in
/// force past that stream's cursor. The store queues an entry only if it is past the cursor and
/// moves the cursor in the same atomic step, so however many nodes offer an entry, each stream
/// gets its SET exactly once and in log order. A new stream's cursor is at the start: its
/// receiver first learns every revocation still in force.
/// </summary>
public sealed partial class SsfEmitter : BackgroundService
{
    private readonly ISsfStreamStore _store;
    private readonly RevocationFeed _feed;
    private readonly SecurityEventWriter _writer;
    private readonly SsfQueuePolicy _queue;
    private readonly RevocationOptions _revocation;
    private readonly ILogger<SsfEmitter> _logger;
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);

    public SsfEmitter(ISsfStreamStore store, RevocationFeed feed, SecurityEventWriter writer, SsfQueuePolicy queue, SsfStreamService streams, IOptions<RevocationOptions> revocation, ILogger<SsfEmitter> logger)
    {
        _store = store;
        _feed = feed;
        _writer = writer;
        _queue = queue;
        _revocation = revocation.Value;
        _logger = logger;
        _feed.Applied += _ => _wake.Release();
        streams.Created += () => _wake.Release();
    }

    /// <summary>One pass over every stream; returns how many SETs were queued (tests and the loop).</summary>
    public async Task<int> EmitAsync(CancellationToken cancellationToken)
    {
        // A stale node may lack entries; it offers nothing and leaves them to a current node (or to itself, once current).
        if (!_feed.IsCurrent)
        {
            return 0;
        }

        var live = _feed.LiveEntries();
        if (live.Count == 0)
        {
            return 0;
        }

        var queued = 0;
        foreach (var (stream, cursor) in await _store.ListAllAsync(cancellationToken))
        {
            var after = RevocationCursor.TryParse(cursor, out var at) ? at : default;
            var offered = new List<SsfQueuedRevocation>();
            foreach (var entry in live)
            {
                if (RevocationCursor.Parse(entry.Id) > after)
                {
                    offered.Add(Offer(stream, entry));
                }
            }

            if (offered.Count > 0)
            {
                var result = await _store.EnqueueRevocationsAsync(stream.Id, offered, _queue.Limits(), cancellationToken);
                if (result.Added > 0)
                {
                    Log.Queued(_logger, result.Added, stream.Id);
                }

                if (result.Dropped > 0)
                {
                    Log.Dropped(_logger, stream.Id, result.Dropped);
                }

                queued += result.Added;
            }
        }

        return queued;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await EmitAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Nothing is lost: the cursor did not move, the next pass offers the same entries.
                Log.EmitFailed(_logger, ex);
            }

            try
            {
                await _wake.WaitAsync(_revocation.PollInterval * 4, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            while (_wake.CurrentCount > 0 && _wake.Wait(0, CancellationToken.None))
            {
            }
        }
    }

    private SsfQueuedRevocation Offer(SsfStream stream, RevocationEntry entry)
    {
        var jti = SecurityEventWriter.NewJti();
        return new SsfQueuedRevocation(entry.Id, jti, stream.Delivers(SsfEventTypes.SessionRevoked) ? _writer.Revocation(stream, entry, jti) : null);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2752, Level = LogLevel.Debug, Message = "Queued {Count} revocation SETs on SSF stream {StreamId}")]
        public static partial void Queued(ILogger logger, int count, string streamId);

        [LoggerMessage(EventId = 2754, Level = LogLevel.Warning, Message = "SSF stream {StreamId} is full (Broker:Ssf:Transmitter:MaxQueuedEvents): dropped its {Count} oldest unacknowledged SETs; its receiver must poll or accept pushes faster")]
        public static partial void Dropped(ILogger logger, string streamId, int count);

        [LoggerMessage(EventId = 2753, Level = LogLevel.Warning, Message = "Queuing revocation SETs on SSF streams failed; the next pass retries")]
        public static partial void EmitFailed(ILogger logger, Exception exception);
    }
}
