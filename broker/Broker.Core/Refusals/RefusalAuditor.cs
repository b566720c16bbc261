using System.Threading.RateLimiting;
using Broker.Core.Audit;
using Broker.Core.Diagnostics;
using Broker.Core.Errors;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Broker.Core.Refusals;

/// <summary>
/// The one way refusals reach the audit log. Each caller (peer address, or attested workload)
/// has a token bucket of <see cref="RateLimitOptions.PermitsPerWindow"/>: within it, a refusal is
/// audited on its own with its real reason; past it, the caller hears <c>RATE_LIMITED</c> and the
/// refusal is only counted, into one <c>refusals.aggregated</c> record per window, caller and
/// reason. Unauthenticated traffic therefore costs the audit log (and its fsync) a bounded
/// number of records per window, whatever its rate.
/// </summary>
/// <remarks>
/// Only refusals spend the budget: a caller's successful calls are never limited here, so a
/// good agent behind the same address as a flooder still gets tokens once it attests. The
/// buckets refill on the system clock (System.Threading.RateLimiting has no TimeProvider);
/// windows close and records are stamped on the injected <see cref="TimeProvider"/>.
/// </remarks>
public sealed partial class RefusalAuditor : IHostedService, IAsyncDisposable
{
    /// <summary>Distinct callers counted per window before the rest are counted together.</summary>
    public const int MaxCallersPerWindow = 1024;

    /// <summary>Metadata key of a <c>RATE_LIMITED</c> refusal: whole seconds until the caller's budget refills.</summary>
    public const string RetryAfterMetadata = "retry_after_seconds";

    private readonly IAuditSink _audit;
    private readonly RateLimitOptions _options;
    private readonly TimeProvider _time;
    private readonly BrokerMetrics _metrics;
    private readonly ILogger<RefusalAuditor> _logger;
    private readonly PartitionedRateLimiter<string> _budget;
    private readonly RefusalTally _tally = new(MaxCallersPerWindow);
    private ITimer? _windows;

    // Until when (UTC ticks) some caller's budget may be spent: the end of the latest window in
    // which a refusal was turned away. Before it passes nobody is shed, so the early check on
    // every attested call is one read, not an address parse and a limiter lookup.
    private long _spentUntil;

    public RefusalAuditor(IAuditSink audit, IOptions<RateLimitOptions> options, TimeProvider time, BrokerMetrics metrics, ILogger<RefusalAuditor> logger)
    {
        _audit = audit;
        _options = options.Value;
        _time = time;
        _metrics = metrics;
        _logger = logger;
        var bucket = new TokenBucketRateLimiterOptions
        {
            TokenLimit = _options.PermitsPerWindow,
            TokensPerPeriod = _options.PermitsPerWindow,
            ReplenishmentPeriod = _options.Window,
            QueueLimit = _options.QueueLimit,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        };
        _budget = PartitionedRateLimiter.Create<string, string>(caller => RateLimitPartition.GetTokenBucketLimiter(caller, _ => bucket), StringComparer.Ordinal);
    }

    /// <summary>
    /// Audits <paramref name="refusal"/> if <paramref name="source"/> is within its budget and
    /// returns null: the caller answers with its own refusal. Past the budget, counts it and
    /// returns the <c>RESOURCE_EXHAUSTED / RATE_LIMITED</c> refusal to answer with instead.
    /// A refusal that cannot be audited is still a refusal; the failure is logged.
    /// </summary>
    public async ValueTask<BrokerException?> AuditAsync(AuditEvent refusal, RefusalSource source, CancellationToken cancellationToken)
    {
        if (_options.Enabled)
        {
            using var lease = await _budget.AcquireAsync(source.Partition, 1, cancellationToken);
            if (!lease.IsAcquired)
            {
                var reason = refusal.Reason ?? refusal.Type;
                _tally.Add(source, reason, _time.GetUtcNow());
                _metrics.RateLimited(source.Door, reason);
                var retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var after) && after > TimeSpan.Zero ? after : _options.Window;
                NoteSpentUntil((_time.GetUtcNow() + retryAfter).UtcTicks);
                return TooManyRefusals(retryAfter);
            }

            // This refusal took the last permit: from now on the caller may be shed.
            if (_budget.GetStatistics(source.Partition) is { CurrentAvailablePermits: <= 0 })
            {
                NoteSpentUntil((_time.GetUtcNow() + _options.Window).UtcTicks);
            }
        }

        if (await _audit.TryAppendAsync(refusal, cancellationToken) is { } ex)
        {
            Log.RefusalNotAudited(_logger, refusal.Type, refusal.Reason, ex);
        }

        return null;
    }

    /// <summary>
    /// Before any work is spent on an unchecked request from <paramref name="peer"/> at
    /// <paramref name="door"/>: when the address's budget has no permit left and the request is not
    /// one checked before (<paramref name="checkedBefore"/> of <paramref name="state"/>, asked only
    /// then), counts it (reason <c>RATE_LIMITED</c>: refused unchecked) and returns the refusal to
    /// answer with; otherwise null, and the request is checked as usual. Nothing is spent here:
    /// only a refusal the check produces spends the budget.
    /// </summary>
    public BrokerException? ShedIfSpent<TState>(string door, string? peer, Func<TState, bool> checkedBefore, TState state)
    {
        if (!_options.Enabled || _options.CheckProofsPastBudget || _options.QueueLimit > 0
            || _time.GetUtcNow().UtcTicks >= Volatile.Read(ref _spentUntil))
        {
            return null;
        }

        var source = RefusalSource.FromPeer(door, peer);
        if (_budget.GetStatistics(source.Partition) is not { CurrentAvailablePermits: <= 0 } || checkedBefore(state))
        {
            return null;
        }

        _tally.Add(source, BrokerErrors.RateLimited, _time.GetUtcNow());
        _metrics.RateLimited(source.Door, BrokerErrors.RateLimited);
        return TooManyRefusals(_options.Window);
    }

    private void NoteSpentUntil(long ticks)
    {
        var seen = Volatile.Read(ref _spentUntil);
        while (ticks > seen && Interlocked.CompareExchange(ref _spentUntil, ticks, seen) is var previous && previous != seen)
        {
            seen = previous;
        }
    }

    /// <summary>Writes one <c>refusals.aggregated</c> record for each caller and reason counted since the last flush.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        foreach (var counted in _tally.Close())
        {
            var record = new AuditEvent
            {
                EventId = AuditEventTypes.RefusalsAggregated.Id,
                Type = AuditEventTypes.RefusalsAggregated.Name,
                Time = _time.GetUtcNow(),
                CorrelationId = Guid.NewGuid().ToString("N"),
                Outcome = AuditOutcomes.Failure,
                Reason = counted.Reason,
                Subject = counted.Workload,
                Peer = counted.Peer,
                Detail = counted.Door,
                Count = counted.Count,
                FirstAt = counted.FirstAt,
                LastAt = counted.LastAt,
            };
            if (await _audit.TryAppendAsync(record, cancellationToken) is { } ex)
            {
                Log.AggregateNotAudited(_logger, counted.Count, counted.Reason, counted.Peer, ex);
            }
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _windows = _time.CreateTimer(_ => _ = FlushQuietlyAsync(), null, _options.Window, _options.Window);
        return Task.CompletedTask;
    }

    /// <summary>Stops the windows and writes what the last one counted, so a shutdown loses no count.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_windows is { } windows)
        {
            await windows.DisposeAsync();
            _windows = null;
        }

        await FlushAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_windows is { } windows)
        {
            await windows.DisposeAsync();
        }

        await _budget.DisposeAsync();
    }

    private static BrokerException TooManyRefusals(TimeSpan retryAfter)
    {
        var seconds = Math.Max(1, (long)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return BrokerErrors.ResourceExhausted(
            BrokerErrors.RateLimited,
            $"Too many refused requests from this caller; the rest are counted, not answered in detail. Retry after {seconds}s.",
            new Dictionary<string, string> { [RetryAfterMetadata] = seconds });
    }

    private async Task FlushQuietlyAsync()
    {
        try
        {
            await FlushAsync();
        }
        catch (Exception ex)
        {
            Log.FlushFailed(_logger, ex);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1400, Level = LogLevel.Error, Message = "A {EventType} ({Reason}) could not be written to the audit log")]
        public static partial void RefusalNotAudited(ILogger logger, string eventType, string? reason, Exception exception);

        [LoggerMessage(EventId = 1401, Level = LogLevel.Error, Message = "An aggregated record of {Count} refusals ({Reason}) from {Peer} could not be written to the audit log")]
        public static partial void AggregateNotAudited(ILogger logger, long count, string reason, string peer, Exception exception);

        [LoggerMessage(EventId = 1402, Level = LogLevel.Error, Message = "Writing the aggregated refusal records failed")]
        public static partial void FlushFailed(ILogger logger, Exception exception);
    }
}
