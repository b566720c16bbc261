using System.Threading.Channels;
using Broker.Core.Revocation;
using Broker.Revocation;
using Broker.Revocation.Wire;
using Broker.Server.Hosting;
using Broker.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace Broker.Server.Services;

/// <summary>
/// Revocation stream and introspection for authenticated resource servers
/// (<see cref="ResourceServerAuthenticator"/>). The stream says what a resource server needs to
/// refuse tokens (selectors and times), never who revoked or why.
/// </summary>
internal sealed class RevocationGrpcService : RevocationService.RevocationServiceBase
{
    /// <summary>Subscribers are told this node is current at least this often.</summary>
    public static readonly TimeSpan HeartbeatInterval = TimeSpan.FromMilliseconds(500);

    // A subscriber further behind than this is cut off; it resumes from its cursor.
    private const int MaxQueuedBatches = 10_000;

    private readonly RevocationFeed _feed;
    private readonly TokenIntrospector _introspector;
    private readonly TimeProvider _time;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly ResourceServerAuthenticator _authenticator;
    private readonly WatchStreamLimiter _streams;

    public RevocationGrpcService(
        RevocationFeed feed,
        TokenIntrospector introspector,
        TimeProvider time,
        IHostApplicationLifetime lifetime,
        ResourceServerAuthenticator authenticator,
        WatchStreamLimiter streams)
    {
        _authenticator = authenticator;
        _streams = streams;
        _feed = feed;
        _introspector = introspector;
        _time = time;
        _lifetime = lifetime;
    }

    public override async Task WatchRevocations(WatchRevocationsRequest request, IServerStreamWriter<RevocationEvent> responseStream, ServerCallContext context)
    {
        var caller = await _authenticator.AuthenticateAsync(context.GetHttpContext());
        using var slot = _streams.Enter(caller);
        _feed.EnsureCurrent();

        // End with the subscriber or with the host, so a node shuts down without waiting for its watchers.
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, _lifetime.ApplicationStopping);
        var cancellation = ending.Token;
        var queue = Channel.CreateBounded<IReadOnlyList<RevocationEntry>?>(new BoundedChannelOptions(MaxQueuedBatches)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.DropWrite,
        });
        void OnApplied(IReadOnlyList<RevocationEntry> entries)
        {
            if (!queue.Writer.TryWrite(entries))
            {
                queue.Writer.TryComplete(new RpcException(new Status(StatusCode.ResourceExhausted, "Subscriber too slow; resume from your cursor.")));
            }
        }

        void OnReset() => queue.Writer.TryComplete(new RpcException(new Status(StatusCode.Unavailable, "Revocation state was rebuilt; reconnect for a fresh snapshot.")));

        // Subscribe before taking the snapshot, then skip what the snapshot already covered.
        _feed.Applied += OnApplied;
        _feed.Reset += OnReset;
        try
        {
            var epoch = _feed.Epoch ?? "";
            var live = _feed.LiveEntries();
            var (reset, after) = ResumePoint(request.After, epoch);
            var sent = after;
            foreach (var entry in live)
            {
                var position = RevocationCursor.Parse(entry.Id);
                if (after is null || position > after.Value)
                {
                    await responseStream.WriteAsync(new RevocationEvent { Revocation = RevocationWire.ToStreamWire(entry) });
                    sent = position;
                }
            }

            var cursor = live.Count > 0 ? live[^1].Id : (_feed.Cursor ?? RevocationFeed.StartCursor);
            await responseStream.WriteAsync(new RevocationEvent
            {
                SnapshotComplete = new SnapshotComplete { Reset = reset, Cursor = FormatCursor(epoch, cursor), Epoch = epoch },
            });

            using var heartbeat = new PeriodicTimer(HeartbeatInterval, _time);
            var tick = heartbeat.WaitForNextTickAsync(cancellation).AsTask();
            while (!cancellation.IsCancellationRequested)
            {
                var read = queue.Reader.WaitToReadAsync(cancellation).AsTask();
                var done = await Task.WhenAny(read, tick);
                if (done == read)
                {
                    if (!await read)
                    {
                        await queue.Reader.Completion;
                        return;
                    }

                    while (queue.Reader.TryRead(out var batch))
                    {
                        foreach (var entry in batch!)
                        {
                            var position = RevocationCursor.Parse(entry.Id);
                            if (sent is null || position > sent.Value)
                            {
                                await responseStream.WriteAsync(new RevocationEvent { Revocation = RevocationWire.ToStreamWire(entry) });
                                sent = position;
                                cursor = entry.Id;
                            }
                        }
                    }

                    continue;
                }

                if (!await tick)
                {
                    return;
                }

                tick = heartbeat.WaitForNextTickAsync(cancellation).AsTask();
                _feed.EnsureCurrent();
                await responseStream.WriteAsync(new RevocationEvent
                {
                    Heartbeat = new Heartbeat
                    {
                        Cursor = FormatCursor(epoch, _feed.Cursor ?? RevocationFeed.StartCursor),
                        ConfirmedAt = Timestamp.FromDateTimeOffset(_feed.ConfirmedAt),
                    },
                });
            }
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // The subscriber went away, or the node is stopping.
        }
        finally
        {
            _feed.Applied -= OnApplied;
            _feed.Reset -= OnReset;
        }
    }

    public override async Task<IntrospectResponse> Introspect(IntrospectRequest request, ServerCallContext context)
    {
        await _authenticator.AuthenticateAsync(context.GetHttpContext());
        _feed.EnsureCurrent();
        var result = await _introspector.IntrospectAsync(request.Token);
        var response = new IntrospectResponse { Active = result.Active, InactiveReason = result.InactiveReason ?? "" };
        if (result.Token is { } jwt)
        {
            response.TokenId = jwt.Id;
            response.Subject = jwt.Subject;
            response.Audience = jwt.Audiences.FirstOrDefault() ?? "";
            response.ExpiresAt = Timestamp.FromDateTime(DateTime.SpecifyKind(jwt.ValidTo, DateTimeKind.Utc));
            response.Scopes.AddRange(result.Scopes);
            response.TaskId = result.TaskId ?? "";
            response.Phase = RevocationWire.ToWirePhase(result.Phase);
        }

        return response;
    }

    private static string FormatCursor(string epoch, string id) => epoch + "/" + id;

    /// <summary>Resume after the caller's cursor when it is from this epoch (expired entries need no replay); otherwise a full snapshot.</summary>
    private static (bool Reset, RevocationCursor? After) ResumePoint(string requested, string epoch)
    {
        var slash = requested.LastIndexOf('/');
        if (slash <= 0 || !string.Equals(requested[..slash], epoch, StringComparison.Ordinal)
            || !RevocationCursor.TryParse(requested[(slash + 1)..], out var after))
        {
            return (true, null);
        }

        return (false, after);
    }
}
