using System.Text.Json;
using Broker.Core.Ssf.Transmitter;
using Microsoft.Extensions.Options;

namespace Broker.Server.Ssf.Transmitter;

/// <summary>
/// Poll delivery (RFC 8936): the receiver POSTs <c>ack</c> (and <c>setErrs</c>, which also
/// remove the SETs they name), <c>maxEvents</c> and <c>returnImmediately</c>; the answer is the
/// oldest unacknowledged SETs as <c>sets</c> and <c>moreAvailable</c>. Unacknowledged SETs are
/// sent again on the next poll. Without <c>returnImmediately</c> an empty queue is waited on, at
/// most <see cref="SsfTransmitterOptions.LongPollTimeout"/>; any node's enqueue wakes the wait.
/// </summary>
internal sealed partial class SsfPollEndpoint(
    SsfStreamService streams,
    ISsfStreamStore store,
    SsfQueueSignals signals,
    SsfQueuePolicy queue,
    SsfRequestRunner runner,
    IOptions<SsfTransmitterOptions> options,
    TimeProvider time,
    ILogger<SsfPollEndpoint> logger)
{
    private const int MaxAcks = 1000;

    private readonly SsfTransmitterOptions _options = options.Value;

    public Task HandleAsync(HttpContext context, string streamId) => runner.RunAsync(context, async (caller, _) =>
    {
        var body = await SsfRequestRunner.ReadObjectAsync(context);
        var (acks, maxEvents, returnImmediately) = Parse(body);
        var stream = await streams.GetAsync(caller.Key, streamId, context.RequestAborted);
        if (stream.IsPush)
        {
            throw SsfTransmitterException.BadRequest("This stream delivers by push (RFC 8935); it cannot be polled.");
        }

        if (acks.Count > 0)
        {
            await store.AcknowledgeAsync(stream.Id, acks, context.RequestAborted);
        }

        var max = Math.Min(maxEvents ?? _options.MaxEventsPerPoll, _options.MaxEventsPerPoll);
        var deadline = time.GetUtcNow() + _options.LongPollTimeout;
        SsfPending pending;
        while (true)
        {
            var next = signals.Next(stream.Id);
            pending = max == 0 ? new SsfPending([], false) : await store.PendingAsync(stream.Id, max, queue.Limits(), context.RequestAborted);
            var left = deadline - time.GetUtcNow();
            if (pending.Events.Count > 0 || returnImmediately || max == 0 || left <= TimeSpan.Zero)
            {
                break;
            }

            // Woken by an enqueue anywhere in the fleet; the timeout also covers a missed notification.
            await Task.WhenAny(next, Task.Delay(left < TimeSpan.FromSeconds(5) ? left : TimeSpan.FromSeconds(5), time, context.RequestAborted));
            context.RequestAborted.ThrowIfCancellationRequested();
        }

        await SsfRequestRunner.WriteJsonAsync(context, StatusCodes.Status200OK, w =>
        {
            w.WriteStartObject();
            w.WriteStartObject("sets");
            foreach (var (jti, set) in pending.Events)
            {
                w.WriteString(jti, set);
            }

            w.WriteEndObject();
            w.WriteBoolean("moreAvailable", pending.MoreAvailable);
            w.WriteEndObject();
        });
    });

    private (List<string> Acks, int? MaxEvents, bool ReturnImmediately) Parse(JsonElement body)
    {
        var acks = new List<string>();
        if (body.TryGetProperty("ack", out var ack))
        {
            if (ack.ValueKind != JsonValueKind.Array || ack.GetArrayLength() > MaxAcks || ack.EnumerateArray().Any(a => a.ValueKind != JsonValueKind.String))
            {
                throw SsfTransmitterException.BadRequest($"ack must be an array of at most {MaxAcks} jti strings.");
            }

            acks.AddRange(ack.EnumerateArray().Select(a => a.GetString()!));
        }

        if (body.TryGetProperty("setErrs", out var errors))
        {
            if (errors.ValueKind != JsonValueKind.Object)
            {
                throw SsfTransmitterException.BadRequest("setErrs must be an object of jti to {err, description}.");
            }

            foreach (var error in errors.EnumerateObject())
            {
                // RFC 8936 section 2.4.2: the receiver refused the SET; it is not sent again.
                var err = error.Value.ValueKind == JsonValueKind.Object && error.Value.TryGetProperty("err", out var e) && e.ValueKind == JsonValueKind.String ? e.GetString()! : "";
                Log.SetRefused(logger, error.Name, err.Length > 64 ? err[..64] : err);
                acks.Add(error.Name);
            }

            if (acks.Count > MaxAcks)
            {
                throw SsfTransmitterException.BadRequest($"ack and setErrs together may name at most {MaxAcks} SETs.");
            }
        }

        int? maxEvents = null;
        if (body.TryGetProperty("maxEvents", out var max))
        {
            maxEvents = max.ValueKind == JsonValueKind.Number && max.TryGetInt32(out var n) && n >= 0
                ? n
                : throw SsfTransmitterException.BadRequest("maxEvents must be a non-negative integer.");
        }

        var returnImmediately = false;
        if (body.TryGetProperty("returnImmediately", out var immediate))
        {
            returnImmediately = immediate.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw SsfTransmitterException.BadRequest("returnImmediately must be a boolean."),
            };
        }

        return (acks, maxEvents, returnImmediately);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2762, Level = LogLevel.Warning, Message = "SSF receiver refused SET {Jti}: {Err}")]
        public static partial void SetRefused(ILogger logger, string jti, string err);
    }
}
