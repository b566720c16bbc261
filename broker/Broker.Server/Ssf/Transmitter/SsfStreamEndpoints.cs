using Broker.Core.Ssf.Transmitter;
using Broker.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Broker.Server.Ssf.Transmitter;

/// <summary>
/// Stream management (SSF 1.0 sections 7.1.1 and 8.1.4) on the configuration endpoint: POST
/// creates (201), GET reads one (<c>?stream_id=</c>) or lists the caller's, PATCH updates, PUT
/// replaces, DELETE removes (204); the verification endpoint queues a verification SET (204).
/// A receiver sees and changes only its own streams; another's answers 404, like none.
/// </summary>
internal sealed class SsfStreamEndpoints(SsfStreamService streams, SsfRequestRunner runner, IOptions<BrokerOptions> broker, IOptions<SsfTransmitterOptions> options)
{
    private readonly string _issuer = broker.Value.Issuer;
    private readonly bool _loopbackHttp = options.Value.AllowLoopbackHttpPush;

    public Task CreateAsync(HttpContext context) => runner.RunAsync(context, async (caller, request) =>
    {
        var body = await SsfRequestRunner.ReadObjectAsync(context);
        var stream = await streams.CreateAsync(caller.Key, caller.Name, SsfStreamJson.Read(body, _loopbackHttp), request, context.RequestAborted);
        await SsfRequestRunner.WriteJsonAsync(context, StatusCodes.Status201Created, w => SsfStreamJson.Write(w, stream, _issuer));
    });

    public Task ReadAsync(HttpContext context) => runner.RunAsync(context, async (caller, _) =>
    {
        if (context.Request.Query["stream_id"].ToString() is { Length: > 0 } id)
        {
            var stream = await streams.GetAsync(caller.Key, id, context.RequestAborted);
            await SsfRequestRunner.WriteJsonAsync(context, StatusCodes.Status200OK, w => SsfStreamJson.Write(w, stream, _issuer));
            return;
        }

        var all = await streams.ListAsync(caller.Key, context.RequestAborted);
        await SsfRequestRunner.WriteJsonAsync(context, StatusCodes.Status200OK, w =>
        {
            w.WriteStartArray();
            foreach (var stream in all)
            {
                SsfStreamJson.Write(w, stream, _issuer);
            }

            w.WriteEndArray();
        });
    });

    /// <summary>PATCH (<paramref name="replace"/> false) changes what the body names; PUT replaces the receiver-supplied members.</summary>
    public Task UpdateAsync(HttpContext context, bool replace) => runner.RunAsync(context, async (caller, _) =>
    {
        var body = await SsfRequestRunner.ReadObjectAsync(context);
        var id = SsfStreamJson.StreamId(body);
        var updated = await streams.UpdateAsync(
            caller.Key,
            id,
            current => replace
                ? SsfStreamJson.Merge(body, current with { EndpointUrl = null, AuthorizationHeader = null, EventsRequested = SsfEventTypes.Supported, Description = null }, _loopbackHttp)
                : SsfStreamJson.Merge(body, current, _loopbackHttp),
            context.RequestAborted);
        await SsfRequestRunner.WriteJsonAsync(context, StatusCodes.Status200OK, w => SsfStreamJson.Write(w, updated, _issuer));
    });

    public Task DeleteAsync(HttpContext context) => runner.RunAsync(context, async (caller, request) =>
    {
        var id = context.Request.Query["stream_id"].ToString();
        if (id.Length == 0)
        {
            throw SsfTransmitterException.BadRequest("stream_id is required (?stream_id=).");
        }

        await streams.DeleteAsync(caller.Key, id, request, context.RequestAborted);
        context.Response.StatusCode = StatusCodes.Status204NoContent;
    });

    public Task VerifyAsync(HttpContext context) => runner.RunAsync(context, async (caller, _) =>
    {
        var body = await SsfRequestRunner.ReadObjectAsync(context);
        string? state = null;
        if (body.TryGetProperty("state", out var value))
        {
            state = value.ValueKind == System.Text.Json.JsonValueKind.String && value.GetString()!.Length <= 256
                ? value.GetString()
                : throw SsfTransmitterException.BadRequest("state must be a string of at most 256 characters.");
        }

        await streams.VerifyAsync(caller.Key, SsfStreamJson.StreamId(body), state, context.RequestAborted);
        context.Response.StatusCode = StatusCodes.Status204NoContent;
    });
}
