using System.Collections.Concurrent;
using Broker.Core.Revocation;
using Broker.Revocation;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Broker.Core.Secrets;

/// <summary>
/// Ends leases on every node: at once for each revocation the node's <see cref="RevocationFeed"/>
/// applies (whichever node applies it first ends the lease; the claim keeps it to one), and on
/// each sweep for leases that expired, that a missed notification left behind, or whose node
/// crashed mid-way.
/// </summary>
public sealed partial class LeaseReaper : BackgroundService
{
    private readonly SecretLeases _leases;
    private readonly RevocationFeed _feed;
    private readonly SecretMetrics _metrics;
    private readonly SecretOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<LeaseReaper> _logger;
    private readonly ConcurrentQueue<RevocationEntry> _revocations = new();
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);

    public LeaseReaper(SecretLeases leases, RevocationFeed feed, SecretMetrics metrics, IOptions<SecretOptions> options, TimeProvider time, ILogger<LeaseReaper> logger)
    {
        _leases = leases;
        _feed = feed;
        _metrics = metrics;
        _options = options.Value;
        _time = time;
        _logger = logger;
        _feed.Applied += OnApplied;
    }

    public override void Dispose()
    {
        _feed.Applied -= OnApplied;
        base.Dispose();
    }

    /// <summary>
    /// How many leases a pass ends at once. Each end is a few round trips and a wait for the
    /// sessions to exit; one at a time, a revocation of many leases would end the last one long
    /// after the first.
    /// </summary>
    private const int ConcurrentEnds = 8;

    /// <summary>Ends the live leases <paramref name="entries"/> match; returns how many this node ended.</summary>
    public async Task<int> ApplyAsync(IReadOnlyList<RevocationEntry> entries, CancellationToken cancellationToken)
    {
        if (entries.Count == 0)
        {
            return 0;
        }

        var live = await _leases.Store.ListAsync(_options.SweepLimit, cancellationToken);
        var due = new Dictionary<string, (SecretLease Lease, LeaseEnd End, DateTimeOffset DueAt)>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            var matcher = new RevocationIndex();
            matcher.Apply(entry);
            foreach (var lease in live)
            {
                if (matcher.IsRevoked(lease.Facts, out _))
                {
                    due.TryAdd(lease.LeaseId, (lease, LeaseEnd.Revoked(entry), entry.RevokedAt));
                }
            }
        }

        return await EndAllAsync(due.Values, cancellationToken);
    }

    /// <summary>One pass over every live lease: ends the expired and the revoked. Returns how many this node ended.</summary>
    public async Task<int> SweepAsync(CancellationToken cancellationToken)
    {
        var live = await _leases.Store.ListAsync(_options.SweepLimit, cancellationToken);
        _metrics.LiveLeases(live.Count);
        var now = _time.GetUtcNow();
        var due = new List<(SecretLease Lease, LeaseEnd End, DateTimeOffset DueAt)>();
        foreach (var lease in live)
        {
            if (lease.ExpiresAt <= now)
            {
                due.Add((lease, LeaseEnd.Expired, lease.ExpiresAt));
            }
            else if (_feed.IsCurrent && _feed.Index.IsRevoked(lease.Facts, out _) && Cause(lease) is { } entry)
            {
                due.Add((lease, LeaseEnd.Revoked(entry), entry.RevokedAt));
            }
        }

        return await EndAllAsync(due, cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var nextSweep = _time.GetUtcNow();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var batch = new List<RevocationEntry>();
                while (_revocations.TryDequeue(out var entry))
                {
                    batch.Add(entry);
                }

                await ApplyAsync(batch, stoppingToken);
                if (_time.GetUtcNow() >= nextSweep)
                {
                    await SweepAsync(stoppingToken);
                    nextSweep = _time.GetUtcNow() + _options.SweepInterval;
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Lease state unreachable: the records stay, and the next pass tries again.
                Log.PassFailed(_logger, ex);
            }

            try
            {
                var wait = nextSweep - _time.GetUtcNow();
                await _wake.WaitAsync(wait > TimeSpan.Zero ? wait : TimeSpan.Zero, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task<int> EndAllAsync(IEnumerable<(SecretLease Lease, LeaseEnd End, DateTimeOffset DueAt)> due, CancellationToken cancellationToken)
    {
        var ended = 0;
        await Parallel.ForEachAsync(
            due,
            new ParallelOptions { MaxDegreeOfParallelism = ConcurrentEnds, CancellationToken = cancellationToken },
            async (item, token) =>
            {
                if (await _leases.EndAsync(item.Lease, item.End, item.DueAt, token))
                {
                    Interlocked.Increment(ref ended);
                }
            });
        return ended;
    }

    private void OnApplied(IReadOnlyList<RevocationEntry> entries)
    {
        foreach (var entry in entries)
        {
            _revocations.Enqueue(entry);
        }

        _wake.Release();
    }

    // The revocation in force that matches the lease, for the audit record.
    private RevocationEntry? Cause(SecretLease lease)
    {
        foreach (var entry in _feed.LiveEntries())
        {
            var matcher = new RevocationIndex();
            matcher.Apply(entry);
            if (matcher.IsRevoked(lease.Facts, out _))
            {
                return entry;
            }
        }

        return null;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2510, Level = LogLevel.Warning, Message = "A lease pass failed; leases stay recorded and the next pass retries")]
        public static partial void PassFailed(ILogger logger, Exception exception);
    }
}
