using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Broker.Core.Ssf.Transmitter;

/// <summary>
/// Push delivery (RFC 8935): POSTs each push stream's queued SETs, oldest first, to the
/// receiver's endpoint. One node pushes a stream at a time — it holds the stream's lease in
/// Redis (an atomic set-if-absent-or-mine, renewed before every SET, and longer than two push
/// timeouts) — so two nodes never push the same SET. A 2xx removes the SET; a 400 with an RFC
/// 8935 error means the receiver refused that SET for good, so it is removed and logged; anything
/// else (401, 403, 5xx, a timeout, no connection) leaves it queued and the stream waits 1 s, 2 s,
/// 4 s … up to <see cref="SsfTransmitterOptions.PushMaxBackoff"/> before trying again, until the
/// SET is delivered or ages past the retention.
/// </summary>
public sealed partial class SsfPusher : BackgroundService
{
    /// <summary>The named HttpClient pushes go through: no redirects, no cookies.</summary>
    public const string HttpClientName = "broker-ssf-push";

    private const int Batch = 20;

    private readonly ISsfStreamStore _store;
    private readonly SsfQueuePolicy _queue;
    private readonly SsfTransmitterOptions _options;
    private readonly IHttpClientFactory _http;
    private readonly TimeProvider _time;
    private readonly ILogger<SsfPusher> _logger;
    private readonly string _node = Environment.MachineName + "-" + Guid.NewGuid().ToString("N")[..8];
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private readonly ConcurrentDictionary<string, Task> _running = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (DateTimeOffset Until, TimeSpan Last)> _backoff = new(StringComparer.Ordinal);

    public SsfPusher(ISsfStreamStore store, SsfQueuePolicy queue, IOptions<SsfTransmitterOptions> options, IHttpClientFactory http, TimeProvider time, ILogger<SsfPusher> logger)
    {
        _store = store;
        _queue = queue;
        _options = options.Value;
        _http = http;
        _time = time;
        _logger = logger;
        _store.Enqueued += _ => _wake.Release();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await StartDueAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Log.PassFailed(_logger, ex);
            }

            try
            {
                await _wake.WaitAsync(TimeSpan.FromSeconds(1), stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            while (_wake.CurrentCount > 0 && _wake.Wait(0, CancellationToken.None))
            {
            }
        }

        await Task.WhenAll(_running.Values);
    }

    private async Task StartDueAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        foreach (var (stream, _) in await _store.ListAllAsync(cancellationToken))
        {
            if (!stream.IsPush || _running.ContainsKey(stream.Id) || (_backoff.TryGetValue(stream.Id, out var wait) && wait.Until > now))
            {
                continue;
            }

            _running[stream.Id] = Task.Run(async () =>
            {
                try
                {
                    await DeliverAsync(stream, cancellationToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    Log.PassFailed(_logger, ex);
                }
                finally
                {
                    _running.TryRemove(stream.Id, out _);
                }
            }, CancellationToken.None);
        }
    }

    private async Task DeliverAsync(SsfStream stream, CancellationToken cancellationToken)
    {
        while (true)
        {
            var pending = await _store.PendingAsync(stream.Id, Batch, _queue.Limits(), cancellationToken);
            if (pending.Events.Count == 0)
            {
                return;
            }

            foreach (var (jti, set) in pending.Events)
            {
                // Renewed before each SET: a node that lost the lease (paused past it) stops before sending.
                if (!await _store.TryLeasePushAsync(stream.Id, _node, _options.PushLease, cancellationToken))
                {
                    return;
                }

                switch (await PushAsync(stream, jti, set, cancellationToken))
                {
                    case Outcome.Delivered:
                        _backoff.TryRemove(stream.Id, out _);
                        await _store.AcknowledgeAsync(stream.Id, [jti], cancellationToken);
                        break;
                    case Outcome.Refused:
                        await _store.AcknowledgeAsync(stream.Id, [jti], cancellationToken);
                        break;
                    default:
                        var last = _backoff.TryGetValue(stream.Id, out var previous) ? previous.Last : TimeSpan.Zero;
                        var next = last == TimeSpan.Zero ? TimeSpan.FromSeconds(1) : TimeSpan.FromTicks(Math.Min(last.Ticks * 2, _options.PushMaxBackoff.Ticks));
                        _backoff[stream.Id] = (_time.GetUtcNow() + next, next);
                        Log.RetryLater(_logger, stream.Id, jti, next);
                        return;
                }
            }
        }
    }

    private async Task<Outcome> PushAsync(SsfStream stream, string jti, string set, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, stream.EndpointUrl) { Content = new StringContent(set, Encoding.ASCII) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/secevent+jwt");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        if (stream.AuthorizationHeader is { } authorization)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.PushTimeout);
        try
        {
            using var response = await _http.CreateClient(HttpClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            if (response.IsSuccessStatusCode)
            {
                Log.Pushed(_logger, jti, stream.Id, (int)response.StatusCode);
                return Outcome.Delivered;
            }

            if (response.StatusCode == HttpStatusCode.BadRequest && await ErrAsync(response, timeout.Token) is { } err)
            {
                // RFC 8935 section 2.3: this SET was refused (bad key, issuer, audience...); sending it again cannot help.
                Log.Refused(_logger, stream.Id, jti, err);
                return Outcome.Refused;
            }

            Log.PushFailed(_logger, jti, stream.Id, ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture));
            return Outcome.Retry;
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            Log.PushFailed(_logger, jti, stream.Id, ex is OperationCanceledException ? "timeout" : ex.GetType().Name);
            return Outcome.Retry;
        }
    }

    private static async Task<string?> ErrAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
            return body.RootElement.TryGetProperty("err", out var err) && err.ValueKind == JsonValueKind.String ? err.GetString()![..Math.Min(err.GetString()!.Length, 64)] : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private enum Outcome
    {
        Delivered,
        Refused,
        Retry,
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2770, Level = LogLevel.Debug, Message = "Pushed SET {Jti} on SSF stream {StreamId}: {Status}")]
        public static partial void Pushed(ILogger logger, string jti, string streamId, int status);

        [LoggerMessage(EventId = 2771, Level = LogLevel.Warning, Message = "The receiver of SSF stream {StreamId} refused SET {Jti} ({Err}); it is not sent again")]
        public static partial void Refused(ILogger logger, string streamId, string jti, string err);

        [LoggerMessage(EventId = 2772, Level = LogLevel.Warning, Message = "Pushing SET {Jti} on SSF stream {StreamId} failed ({Why}); it stays queued")]
        public static partial void PushFailed(ILogger logger, string jti, string streamId, string why);

        [LoggerMessage(EventId = 2773, Level = LogLevel.Information, Message = "SSF stream {StreamId}: next push of {Jti} in {Wait}")]
        public static partial void RetryLater(ILogger logger, string streamId, string jti, TimeSpan wait);

        [LoggerMessage(EventId = 2774, Level = LogLevel.Warning, Message = "A push pass over the SSF streams failed; the next pass retries")]
        public static partial void PassFailed(ILogger logger, Exception exception);
    }
}
