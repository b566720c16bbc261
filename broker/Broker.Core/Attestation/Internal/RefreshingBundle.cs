using System.Security.Cryptography;
using Broker.Core.Errors;
using Microsoft.Extensions.Logging;

namespace Broker.Core.Attestation.Internal;

/// <summary>
/// One trust bundle (JWKS or CA certificates) with bounded refresh:
/// re-read every <c>refreshInterval</c>; an early refresh (an unknown kid) at most once per
/// <c>refreshInterval / 10</c>; a failed refresh keeps the last good bundle; a source that has
/// never loaded is retried no more often than an early refresh, so a dead URL cannot be used
/// to make the broker hammer it. Only one fetch runs at a time.
/// </summary>
internal sealed class RefreshingBundle<T>
    where T : class
{
    private static readonly TimeSpan MinimumEarlyRefreshInterval = TimeSpan.FromSeconds(1);

    private readonly string _description;
    private readonly Func<Task<byte[]>> _fetch;
    private readonly Func<byte[], T> _parse;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TimeSpan _refreshInterval;
    private readonly TimeSpan _earlyRefreshInterval;
    private readonly SemaphoreSlim _gate = new(1, 1);

    private volatile Snapshot? _current;
    // UTC ticks, read without the gate on the hot path (longs, so reads never tear).
    private long _nextRefreshTicks;
    private long _lastAttemptTicks;

    public RefreshingBundle(string description, Func<Task<byte[]>> fetch, Func<byte[], T> parse, TimeSpan refreshInterval, TimeProvider time, ILogger logger)
    {
        _description = description;
        _fetch = fetch;
        _parse = parse;
        _time = time;
        _logger = logger;
        _refreshInterval = refreshInterval > TimeSpan.Zero ? refreshInterval : TimeSpan.FromMinutes(5);
        _earlyRefreshInterval = _refreshInterval / 10 > MinimumEarlyRefreshInterval ? _refreshInterval / 10 : MinimumEarlyRefreshInterval;
    }

    /// <summary>Raised when a refresh brings different content than the bundle held before.</summary>
    public event Action? Changed;

    /// <summary>How many fetches were attempted (tests observe the refresh bounds with it).</summary>
    internal int FetchCount => Volatile.Read(ref _fetchCount);

    private int _fetchCount;

    /// <summary>The current bundle, refreshed first when it is due.</summary>
    public async ValueTask<T> GetAsync(CancellationToken cancellationToken)
    {
        var current = _current;
        var now = _time.GetUtcNow();
        if (current is not null && now.UtcTicks < Volatile.Read(ref _nextRefreshTicks))
        {
            return current.Value;
        }

        if (current is not null)
        {
            // Due for refresh: one caller refreshes, the rest keep using the good bundle.
            if (_gate.Wait(0, CancellationToken.None))
            {
                try
                {
                    await RefreshLockedAsync(now, cancellationToken);
                }
                finally
                {
                    _gate.Release();
                }
            }

            return _current!.Value;
        }

        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_current is null && SinceLastAttempt(_time.GetUtcNow()) >= _earlyRefreshInterval)
            {
                await RefreshLockedAsync(_time.GetUtcNow(), cancellationToken);
            }
        }
        finally
        {
            _gate.Release();
        }

        return _current?.Value
            ?? throw BrokerErrors.Unavailable(BrokerErrors.TrustBundleUnavailable, "the trust bundle for this proof is not available; try again later");
    }

    /// <summary>
    /// Refreshes ahead of schedule (a proof named a key the bundle lacks), at most once per
    /// early-refresh interval. Returns the bundle after the refresh, or null when none was allowed.
    /// </summary>
    public async ValueTask<T?> TryRefreshEarlyAsync(CancellationToken cancellationToken)
    {
        if (SinceLastAttempt(_time.GetUtcNow()) < _earlyRefreshInterval)
        {
            return null;
        }

        await _gate.WaitAsync(cancellationToken);
        try
        {
            // Another caller may have refreshed while this one waited: that counts.
            var now = _time.GetUtcNow();
            if (SinceLastAttempt(now) >= _earlyRefreshInterval)
            {
                await RefreshLockedAsync(now, cancellationToken);
            }

            return _current?.Value;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task RefreshLockedAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        Volatile.Write(ref _lastAttemptTicks, now.UtcTicks);
        Interlocked.Increment(ref _fetchCount);
        try
        {
            var bytes = await _fetch().WaitAsync(cancellationToken);
            var digest = SHA256.HashData(bytes);
            var previous = _current;
            if (previous is not null && digest.AsSpan().SequenceEqual(previous.Digest))
            {
                // Unchanged: keep the parsed keys (and the library's per-key crypto caches).
                Volatile.Write(ref _nextRefreshTicks, (now + _refreshInterval).UtcTicks);
                return;
            }

            var value = _parse(bytes);
            _current = new Snapshot(value, digest);
            Volatile.Write(ref _nextRefreshTicks, (now + _refreshInterval).UtcTicks);
            AttestationLog.BundleLoaded(_logger, _description);
            if (previous is not null)
            {
                Changed?.Invoke();
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            // Keep serving the last good bundle; try again after the early-refresh interval.
            Volatile.Write(ref _nextRefreshTicks, (now + _earlyRefreshInterval).UtcTicks);
            if (_current is null)
            {
                AttestationLog.BundleUnavailable(_logger, _description, e);
            }
            else
            {
                AttestationLog.BundleRefreshFailed(_logger, _description, e);
            }
        }
    }

    private TimeSpan SinceLastAttempt(DateTimeOffset now)
    {
        var last = Volatile.Read(ref _lastAttemptTicks);
        return last == 0 ? TimeSpan.MaxValue : TimeSpan.FromTicks(now.UtcTicks - last);
    }

    private sealed record Snapshot(T Value, byte[] Digest);
}
