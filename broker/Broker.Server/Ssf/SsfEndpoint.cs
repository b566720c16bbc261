using System.Text;
using Broker.Core.Errors;
using Broker.Core.Issuance;
using Broker.Core.Ssf;

namespace Broker.Server.Ssf;

/// <summary>
/// Shared Signals Framework push delivery (RFC 8935): the transmitter named in policy
/// (signals.ssf) POSTs Security Event Tokens (RFC 8417); CAEP/RISC events become signals on the
/// same path as the gRPC SignalService, or revocations. See docs/risk.md.
/// </summary>
internal static class SsfEndpoint
{
    public const string Path = "/ssf/events";
    public const string ContentType = "application/secevent+jwt";

    public static IEndpointRouteBuilder MapSsf(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost(Path, HandleAsync);
        return endpoints;
    }

    private static async Task<IResult> HandleAsync(HttpContext http, SsfReceiver receiver)
    {
        var context = new RequestContext(Guid.NewGuid().ToString("N"), http.Connection.RemoteIpAddress?.ToString());
        try
        {
            if (!string.Equals(http.Request.ContentType?.Split(';')[0].Trim(), ContentType, StringComparison.OrdinalIgnoreCase))
            {
                throw new SetRefusedException("invalid_request", $"Content-Type must be {ContentType}.");
            }

            var set = await ReadBoundedAsync(http, receiver.MaxBytes);
            await receiver.ReceiveAsync(set, context, http.RequestAborted);
            return Results.StatusCode(StatusCodes.Status202Accepted);
        }
        catch (SetRefusedException refusal)
        {
            if (await receiver.AuditRefusalAsync(refusal, context, http.RequestAborted) is { } limited)
            {
                return RateLimited(http, limited);
            }

            return Results.Json(new { err = refusal.Err, description = refusal.Description }, statusCode: StatusCodes.Status400BadRequest);
        }
        catch (BrokerException ex) when (ex.Reason == BrokerErrors.RateLimited)
        {
            return RateLimited(http, ex);
        }
        catch (BrokerException ex) when (ex.Kind == FailureKind.Unavailable)
        {
            return Results.Json(new { err = "temporarily_unavailable", description = ex.Message }, statusCode: StatusCodes.Status503ServiceUnavailable);
        }
        catch (BrokerException ex)
        {
            // Refused by the signal path, which audited it already.
            var err = ex.Kind == FailureKind.PermissionDenied ? "access_denied" : "invalid_request";
            return Results.Json(new { err, description = $"{ex.Reason}: {ex.Message}" }, statusCode: StatusCodes.Status400BadRequest);
        }
    }

    /// <summary>HTTP 429 with Retry-After: the transmitter's refused SETs are past its budget and only counted (docs/risk.md).</summary>
    private static IResult RateLimited(HttpContext http, BrokerException limited)
    {
        http.Response.Headers.RetryAfter = limited.Metadata[Core.Refusals.RefusalAuditor.RetryAfterMetadata];
        return Results.Json(new { err = "rate_limited", description = $"{limited.Reason}: {limited.Message}" }, statusCode: StatusCodes.Status429TooManyRequests);
    }

    /// <summary>
    /// Reads at most <paramref name="maxBytes"/> + 1 bytes whatever the framing (a declared
    /// length is refused before reading; a chunked body is cut off one byte past the limit).
    /// </summary>
    private static async Task<string> ReadBoundedAsync(HttpContext http, int maxBytes)
    {
        if (http.Request.ContentLength > maxBytes)
        {
            throw TooLarge(maxBytes);
        }

        var buffer = new byte[maxBytes + 1];
        var total = 0;
        int read;
        while (total < buffer.Length && (read = await http.Request.Body.ReadAsync(buffer.AsMemory(total), http.RequestAborted)) > 0)
        {
            total += read;
        }

        if (total > maxBytes)
        {
            throw TooLarge(maxBytes);
        }

        // A compact JWS is ASCII; anything else becomes '?' and fails the pre-flight.
        return Encoding.ASCII.GetString(buffer, 0, total).Trim();
    }

    private static SetRefusedException TooLarge(int maxBytes) => new("invalid_request", $"The SET is larger than {maxBytes} bytes (Broker:Attestation:MaxProofBytes).");
}
