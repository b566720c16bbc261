using Broker.ResourceServer.Internal;
using Broker.Revocation;
using Broker.Revocation.Wire;
using Broker.V1;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Broker.ResourceServer;

/// <summary>
/// Keeps a local <see cref="RevocationIndex"/> current from the broker's
/// <c>RevocationService.WatchRevocations</c> stream: a snapshot of the revocations in force, then
/// each new one as it happens, with heartbeats in between. It reconnects with bounded backoff and
/// resumes from the last cursor, so nothing revoked while it was away is missed. Revocation
/// state counts as current only while the broker was heard from within
/// <see cref="BrokerJwtBearerOptions.StalenessBound"/>.
/// </summary>
/// <remarks>One writer (the stream loop) updates the index; request threads only read it.</remarks>
public sealed partial class BrokerRevocationClient : BackgroundService
{
    private readonly BrokerJwtBearerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<BrokerRevocationClient> _logger;
    private volatile RevocationIndex _index = new();

    // Stream state, touched only by the stream loop.
    private RevocationIndex? _staging;
    private bool _snapshotDone;
    private string? _cursor;
    private string? _epoch;
    private DateTimeOffset _lastPrune;

    private long _confirmedAtTicks;
    private long _entriesApplied;
    private long _reconnects;
    private long _resets;
    private long _snapshots;
    private int _failOpenWarned;

    /// <summary>Creates the client; the host starts it (it is registered as a hosted service).</summary>
    public BrokerRevocationClient(IOptions<BrokerJwtBearerOptions> options, TimeProvider time, ILogger<BrokerRevocationClient> logger)
    {
        _options = options.Value;
        _time = time;
        _logger = logger;
        _lastPrune = time.GetUtcNow();
    }

    /// <summary>The revocations in force. Replaced as a whole when the broker says to start over (a reset snapshot).</summary>
    public RevocationIndex Index => _index;

    /// <summary>True while the broker confirmed the revocation state within the staleness bound.</summary>
    public bool IsCurrent => LastConfirmed is { } confirmed && _time.GetUtcNow() - confirmed <= _options.StalenessBound;

    /// <summary>Local receive time of the last message that confirmed the state (snapshot end, heartbeat or live entry); null before the first snapshot.</summary>
    public DateTimeOffset? LastConfirmed
    {
        get
        {
            var ticks = Interlocked.Read(ref _confirmedAtTicks);
            return ticks == 0 ? null : new DateTimeOffset(ticks, TimeSpan.Zero);
        }
    }

    /// <summary>The resume cursor: the latest one the broker sent (snapshot end or heartbeat).</summary>
    public string? Cursor => Volatile.Read(ref _cursor);

    /// <summary>The broker's revocation epoch from the last snapshot.</summary>
    public string? Epoch => Volatile.Read(ref _epoch);

    /// <summary>Revocation entries applied to the index since start.</summary>
    public long EntriesApplied => Interlocked.Read(ref _entriesApplied);

    /// <summary>Times the stream was opened again after it ended or failed.</summary>
    public long Reconnects => Interlocked.Read(ref _reconnects);

    /// <summary>Snapshots completed (one per successful connection).</summary>
    public long Snapshots => Interlocked.Read(ref _snapshots);

    /// <summary>Times the index was replaced because the broker asked for a reset or its epoch changed.</summary>
    public long Resets => Interlocked.Read(ref _resets);

    /// <summary>
    /// Checks a validated token's facts: revoked by an entry held, refused because state is
    /// unknown (fail-closed stance), accepted unconfirmed (fail-open stance) or active.
    /// </summary>
    /// <param name="token">The token's id, subject, task, phase and issue time.</param>
    /// <param name="kind">When revoked, which kind of revocation matched.</param>
    public RevocationCheck Check(in TokenFacts token, out RevocationKind kind)
    {
        // A revocation already held always wins, whatever the stance.
        if (_index.IsRevoked(token, out kind))
        {
            return RevocationCheck.Revoked;
        }

        if (IsCurrent)
        {
            Volatile.Write(ref _failOpenWarned, 0);
            return RevocationCheck.Active;
        }

        if (_options.StaleStance == StaleStance.FailOpen)
        {
            if (Interlocked.Exchange(ref _failOpenWarned, 1) == 0)
            {
                Log.AcceptingWhileStale(_logger, _options.StalenessBound);
            }

            return RevocationCheck.ActiveUnconfirmed;
        }

        return RevocationCheck.StateUnknown;
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_options.StaleStance == StaleStance.FailOpen)
        {
            Log.FailOpenConfigured(_logger);
        }

        if (!_options.RequireHttpsMetadata)
        {
            Log.HttpsNotRequired(_logger, _options.Authority, _options.RevocationAddress);
        }

        using var channel = CreateChannel();
        var client = new RevocationService.RevocationServiceClient(channel);
        var delay = _options.ReconnectDelayMin;
        var first = true;
        while (!stoppingToken.IsCancellationRequested)
        {
            if (!first)
            {
                Interlocked.Increment(ref _reconnects);
            }

            first = false;
            if (await WatchOnceAsync(client, stoppingToken))
            {
                delay = _options.ReconnectDelayMin;
            }

            if (stoppingToken.IsCancellationRequested)
            {
                return;
            }

            try
            {
                // Up to 20 % jitter so a fleet of resource servers does not reconnect in step.
                var wait = delay + TimeSpan.FromTicks((long)(delay.Ticks * 0.2 * Random.Shared.NextDouble()));
                await Task.Delay(wait, _time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.ReconnectDelayMax.Ticks));
        }
    }

    /// <summary>One stream, from open to end; true when it got as far as a complete snapshot.</summary>
    private async Task<bool> WatchOnceAsync(RevocationService.RevocationServiceClient client, CancellationToken stoppingToken)
    {
        // A silent broker (half-open connection) is a dead stream: give up after the staleness bound.
        using var idle = new CancellationTokenSource(Timeout.InfiniteTimeSpan, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, idle.Token);
        BeginStream();
        try
        {
            idle.CancelAfter(_options.StalenessBound);
            var headers = new Metadata { { "authorization", "Bearer " + await ReadTokenAsync(linked.Token) } };
            using var call = client.WatchRevocations(new WatchRevocationsRequest { After = Cursor ?? "" }, headers, cancellationToken: linked.Token);
            while (await call.ResponseStream.MoveNext(linked.Token))
            {
                idle.CancelAfter(_options.StalenessBound);
                Handle(call.ResponseStream.Current);
            }

            Log.StreamEnded(_logger, _options.RevocationAddress);
        }
        catch (RpcException ex) when (!stoppingToken.IsCancellationRequested && ex.StatusCode is StatusCode.Unauthenticated or StatusCode.PermissionDenied)
        {
            Log.NotAdmitted(_logger, _options.RevocationAddress, ex.StatusCode, ex.Status.Detail);
        }
        catch (RpcException ex) when (!stoppingToken.IsCancellationRequested)
        {
            if (idle.IsCancellationRequested)
            {
                Log.StreamSilent(_logger, _options.RevocationAddress, _options.StalenessBound);
            }
            else
            {
                Log.StreamFailed(_logger, _options.RevocationAddress, ex.StatusCode, ex.Status.Detail);
            }
        }
        catch (IOException ex) when (!stoppingToken.IsCancellationRequested)
        {
            Log.TokenUnreadable(_logger, _options.RevocationTokenFile, ex.GetType().Name);
        }
        catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
        {
            Log.StreamSilent(_logger, _options.RevocationAddress, _options.StalenessBound);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
        {
            Log.StreamError(_logger, _options.RevocationAddress, ex);
        }

        var completed = _snapshotDone;
        EndStream();
        return completed;
    }

    /// <summary>Starts a stream: snapshot entries are also collected apart in case the broker says to drop what was held.</summary>
    internal void BeginStream()
    {
        _snapshotDone = false;
        _staging = _index.Count > 0 ? new RevocationIndex() : null;
    }

    internal void EndStream()
    {
        _snapshotDone = false;
        _staging = null;
    }

    /// <summary>Applies one message of the stream (the stream loop's thread only).</summary>
    internal void Handle(RevocationEvent message)
    {
        var now = _time.GetUtcNow();
        switch (message.KindCase)
        {
            case RevocationEvent.KindOneofCase.Revocation:
                Apply(message.Revocation, now);
                if (_snapshotDone)
                {
                    Confirm(now);
                }

                break;
            case RevocationEvent.KindOneofCase.SnapshotComplete:
                CompleteSnapshot(message.SnapshotComplete, now);
                break;
            case RevocationEvent.KindOneofCase.Heartbeat:
                if (_snapshotDone)
                {
                    if (!string.IsNullOrEmpty(message.Heartbeat.Cursor))
                    {
                        Volatile.Write(ref _cursor, message.Heartbeat.Cursor);
                    }

                    Confirm(now);
                }

                break;
            default:
                // A newer broker may add kinds; this client cannot act on them.
                break;
        }

        if (now - _lastPrune >= _options.PruneInterval)
        {
            _lastPrune = now;
            var removed = _index.Prune(now - _options.ClockSkew);
            if (removed > 0)
            {
                Log.Pruned(_logger, removed);
            }
        }
    }

    private void Apply(V1.Revocation revocation, DateTimeOffset now)
    {
        if (!RevocationWire.TryToEntry(revocation, out var entry))
        {
            Log.UnknownSelector(_logger, revocation.Id);
            return;
        }

        // Kept past expiry by the clock skew: JwtBearer still accepts a token that long.
        if (entry.ExpiresAt + _options.ClockSkew <= now)
        {
            return;
        }

        // Into the live index at once (a revocation must never wait), and into the staging index
        // in case this snapshot turns out to replace everything.
        _index.Apply(entry);
        _staging?.Apply(entry);
        Interlocked.Increment(ref _entriesApplied);
    }

    private void CompleteSnapshot(SnapshotComplete complete, DateTimeOffset now)
    {
        var epochChanged = _epoch is not null && !string.Equals(_epoch, complete.Epoch, StringComparison.Ordinal);
        if ((complete.Reset || epochChanged) && _staging is not null)
        {
            // Swap, never clear: readers must not see an empty index in between.
            _index = _staging;
            Interlocked.Increment(ref _resets);
            Log.IndexReset(_logger, complete.Epoch, _index.Count);
        }

        _staging = null;
        _snapshotDone = true;
        Volatile.Write(ref _epoch, complete.Epoch);
        if (!string.IsNullOrEmpty(complete.Cursor))
        {
            Volatile.Write(ref _cursor, complete.Cursor);
        }

        Interlocked.Increment(ref _snapshots);
        Confirm(now);
        Log.SnapshotComplete(_logger, complete.Epoch, complete.Reset, _index.Count);
    }

    private void Confirm(DateTimeOffset now) => Interlocked.Exchange(ref _confirmedAtTicks, now.UtcTicks);

    /// <summary>The resource-server token for this connection: from the provider, or read fresh from the file.</summary>
    private async ValueTask<string> ReadTokenAsync(CancellationToken cancellationToken)
    {
        var token = _options.RevocationTokenProvider is { } provider
            ? await provider(cancellationToken)
            : await File.ReadAllTextAsync(_options.RevocationTokenFile, cancellationToken);
        token = token.Trim();
        if (token.Length == 0)
        {
            throw new IOException("The resource-server token is empty.");
        }

        return token;
    }

    private GrpcChannel CreateChannel()
    {
        var channelOptions = _options.RevocationChannelOptions ?? new GrpcChannelOptions();
        if (channelOptions.HttpHandler is null && channelOptions.HttpClient is null)
        {
            if (_options.RevocationHttpHandler is { } handler)
            {
                channelOptions.HttpHandler = handler;
            }
            else
            {
                channelOptions.HttpHandler = new SocketsHttpHandler
                {
                    // One long-lived stream: keep the connection, and notice a dead peer.
                    PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
                    KeepAlivePingDelay = TimeSpan.FromSeconds(15),
                    KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
                    EnableMultipleHttp2Connections = true,
                };
                channelOptions.DisposeHttpClient = true;
            }
        }

        return GrpcChannel.ForAddress(_options.RevocationAddress, channelOptions);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 5100, Level = LogLevel.Information, Message = "Revocation snapshot complete (epoch {Epoch}, reset {Reset}); {Count} entries held")]
        public static partial void SnapshotComplete(ILogger logger, string epoch, bool reset, int count);

        [LoggerMessage(EventId = 5101, Level = LogLevel.Warning, Message = "Revocation index replaced by a fresh snapshot (epoch {Epoch}); {Count} entries held")]
        public static partial void IndexReset(ILogger logger, string epoch, int count);

        [LoggerMessage(EventId = 5102, Level = LogLevel.Warning, Message = "Revocation stream from {Address} failed ({StatusCode}: {Detail}); reconnecting")]
        public static partial void StreamFailed(ILogger logger, string address, StatusCode statusCode, string detail);

        [LoggerMessage(EventId = 5103, Level = LogLevel.Warning, Message = "Revocation stream from {Address} was silent for {Bound}; reconnecting")]
        public static partial void StreamSilent(ILogger logger, string address, TimeSpan bound);

        [LoggerMessage(EventId = 5104, Level = LogLevel.Information, Message = "Revocation stream from {Address} ended; reconnecting")]
        public static partial void StreamEnded(ILogger logger, string address);

        [LoggerMessage(EventId = 5105, Level = LogLevel.Error, Message = "Revocation stream from {Address} failed; reconnecting")]
        public static partial void StreamError(ILogger logger, string address, Exception exception);

        [LoggerMessage(EventId = 5106, Level = LogLevel.Error, Message = "Revocation {RevocationId} has a selector this SDK does not know; it cannot be enforced here (update the SDK)")]
        public static partial void UnknownSelector(ILogger logger, string revocationId);

        [LoggerMessage(EventId = 5107, Level = LogLevel.Debug, Message = "Pruned {Count} lapsed revocation entries")]
        public static partial void Pruned(ILogger logger, int count);

        [LoggerMessage(EventId = 5108, Level = LogLevel.Warning, Message = "Revocation state not confirmed within {Bound}: accepting tokens unchecked against new revocations (StaleStance = FailOpen)")]
        public static partial void AcceptingWhileStale(ILogger logger, TimeSpan bound);

        [LoggerMessage(EventId = 5109, Level = LogLevel.Warning, Message = "StaleStance = FailOpen: while revocation state is unknown, valid tokens are accepted and new revocations are not enforced")]
        public static partial void FailOpenConfigured(ILogger logger);

        [LoggerMessage(EventId = 1300, Level = LogLevel.Error, Message = "The broker at {Address} refused this resource server's token ({StatusCode}: {Detail}); revocation state stays unknown until a valid resource-server token is configured")]
        public static partial void NotAdmitted(ILogger logger, string address, StatusCode statusCode, string detail);

        [LoggerMessage(EventId = 1301, Level = LogLevel.Error, Message = "The resource-server token file {Path} could not be read ({Error}); retrying")]
        public static partial void TokenUnreadable(ILogger logger, string path, string error);

        [LoggerMessage(EventId = 5110, Level = LogLevel.Warning, Message = "RequireHttpsMetadata = false: keys from {Authority} and revocations from {RevocationAddress} may travel in the clear (loopback or dev only)")]
        public static partial void HttpsNotRequired(ILogger logger, string authority, string revocationAddress);
    }
}

/// <summary>The outcome of <see cref="BrokerRevocationClient.Check"/>.</summary>
public enum RevocationCheck
{
    /// <summary>Not revoked, and revocation state is current.</summary>
    Active,

    /// <summary>A revocation in force matches the token.</summary>
    Revoked,

    /// <summary>Revocation state is stale and the stance is fail-closed: refuse.</summary>
    StateUnknown,

    /// <summary>Revocation state is stale and the stance is fail-open: accepted, unconfirmed.</summary>
    ActiveUnconfirmed,
}
