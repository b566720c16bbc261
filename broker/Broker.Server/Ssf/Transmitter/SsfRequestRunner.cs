using System.Text.Json;
using Broker.Core.Errors;
using Broker.Core.Issuance;
using Broker.Core.Ssf.Transmitter;
using Broker.Server.Hosting;
using Broker.Server.OAuth;

namespace Broker.Server.Ssf.Transmitter;

/// <summary>
/// What every transmitter endpoint does around its own work: TLS where OAuth requires it, the
/// resource-server check (the same bearer token as introspection and WatchRevocations), and
/// each refusal as JSON <c>{"err", "description"}</c> with its precise status (RFC 8935
/// section 2.4, RFC 8936 section 2.4.4): 400, 401 (with <c>WWW-Authenticate</c>), 403, 404,
/// 409, 413, 503.
/// </summary>
internal sealed partial class SsfRequestRunner(ResourceServerAuthenticator authenticator, OAuthTransport transport, ILogger<SsfRequestRunner> logger)
{
    /// <summary>Largest request body: a stream configuration or a poll with its acks.</summary>
    public const int MaxBodyBytes = 64 * 1024;

    public async Task RunAsync(HttpContext context, Func<ResourceServerCaller, RequestContext, Task> handle)
    {
        try
        {
            try
            {
                transport.EnsureSecure(context);
            }
            catch (OAuthRequestException ex)
            {
                throw SsfTransmitterException.BadRequest(ex.Message);
            }

            var caller = await authenticator.AuthenticateAsync(context);
            await handle(caller, new RequestContext(Guid.NewGuid().ToString("N"), context.Connection.RemoteIpAddress?.ToString()));
        }
        catch (SsfTransmitterException ex)
        {
            Log.Refused(logger, context.Request.Path, ex.Status, ex.Err);
            await ErrorAsync(context, ex.Status, ex.Err, ex.Message);
        }
        catch (BrokerException ex) when (ex.Kind is FailureKind.Unauthenticated or FailureKind.PermissionDenied)
        {
            // Counted, not logged one by one: the caller proved nothing (as at introspection).
            var unauthenticated = ex.Kind == FailureKind.Unauthenticated;
            if (unauthenticated)
            {
                context.Response.Headers.WWWAuthenticate = "Bearer realm=\"broker\"";
            }

            await ErrorAsync(context, unauthenticated ? 401 : 403, unauthenticated ? "authentication_failed" : "access_denied", $"{ex.Reason}: {ex.Message}");
        }
        catch (BrokerException ex) when (ex.Kind == FailureKind.Unavailable)
        {
            await ErrorAsync(context, 503, "temporarily_unavailable", $"{ex.Reason}: {ex.Message}");
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The receiver went away; there is no one to answer.
        }
        catch (Exception ex)
        {
            Log.Unexpected(logger, context.Request.Path, ex);
            await ErrorAsync(context, 500, "server_error", "Internal error.");
        }
    }

    /// <summary>The request body as one JSON object, at most <see cref="MaxBodyBytes"/>; an empty body is an empty object.</summary>
    public static async Task<JsonElement> ReadObjectAsync(HttpContext context)
    {
        var contentType = context.Request.ContentType?.Split(';')[0].Trim();
        if (context.Request.ContentLength is > 0 or null && contentType is not null && !string.Equals(contentType, "application/json", StringComparison.OrdinalIgnoreCase))
        {
            throw new SsfTransmitterException(415, "invalid_request", "Content-Type must be application/json.");
        }

        if (context.Request.ContentLength > MaxBodyBytes)
        {
            throw new SsfTransmitterException(413, "invalid_request", $"The request body is larger than {MaxBodyBytes} bytes.");
        }

        var buffer = new byte[MaxBodyBytes + 1];
        var total = 0;
        int read;
        while (total < buffer.Length && (read = await context.Request.Body.ReadAsync(buffer.AsMemory(total), context.RequestAborted)) > 0)
        {
            total += read;
        }

        if (total > MaxBodyBytes)
        {
            throw new SsfTransmitterException(413, "invalid_request", $"The request body is larger than {MaxBodyBytes} bytes.");
        }

        if (total == 0)
        {
            return JsonDocument.Parse("{}").RootElement.Clone();
        }

        try
        {
            using var document = JsonDocument.Parse(buffer.AsMemory(0, total), new JsonDocumentOptions { MaxDepth = 8 });
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw SsfTransmitterException.BadRequest("The request body must be a JSON object.");
            }

            return document.RootElement.Clone();
        }
        catch (JsonException)
        {
            throw SsfTransmitterException.BadRequest("The request body is not valid JSON.");
        }
    }

    public static async Task WriteJsonAsync(HttpContext context, int status, Action<Utf8JsonWriter> write)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        context.Response.Headers.CacheControl = "no-store";
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            write(writer);
        }

        await context.Response.Body.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), context.RequestAborted);
    }

    private static Task ErrorAsync(HttpContext context, int status, string err, string description) =>
        WriteJsonAsync(context, status, w =>
        {
            w.WriteStartObject();
            w.WriteString("err", err);
            w.WriteString("description", description);
            w.WriteEndObject();
        });

    private static partial class Log
    {
        [LoggerMessage(EventId = 2760, Level = LogLevel.Information, Message = "SSF request to {Path} refused: {Status} {Err}")]
        public static partial void Refused(ILogger logger, PathString path, int status, string err);

        [LoggerMessage(EventId = 2761, Level = LogLevel.Error, Message = "SSF request to {Path} failed unexpectedly")]
        public static partial void Unexpected(ILogger logger, PathString path, Exception exception);
    }
}
