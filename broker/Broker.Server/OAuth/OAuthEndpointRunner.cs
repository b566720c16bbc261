using Broker.Core.Errors;

namespace Broker.Server.OAuth;

/// <summary>
/// What every OAuth endpoint does around its own work: refuse plain HTTP where TLS is required,
/// and turn each refusal into its RFC 6749 error with the Broker reason. One place, so the
/// token, introspection and revocation endpoints answer a refusal the same way.
/// </summary>
internal sealed partial class OAuthEndpointRunner(OAuthTransport transport, ILogger<OAuthEndpointRunner> logger)
{
    public async Task RunAsync(HttpContext context, Func<Task> handle)
    {
        try
        {
            transport.EnsureSecure(context);
            await handle();
        }
        catch (OAuthRequestException ex)
        {
            Log.Refused(logger, context.Request.Path, ex.Reason);
            await OAuthResponse.ErrorAsync(context, ex.Error, ex.Reason, ex.Message);
        }
        catch (BrokerException ex)
        {
            var (error, status) = OAuthErrorMap.Map(ex);
            if (ex.Metadata.TryGetValue(Core.Refusals.RefusalAuditor.RetryAfterMetadata, out var retryAfter))
            {
                // Counted by the broker.rate_limited metric: a log line each would let a flood fill the log.
                context.Response.Headers.RetryAfter = retryAfter;
            }
            else
            {
                Log.Refused(logger, context.Request.Path, ex.Reason);
            }

            await OAuthResponse.ErrorAsync(context, error, ex.Reason, ex.Message, ex.Metadata, status: status);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; there is no one to answer.
        }
        catch (Exception ex)
        {
            Log.Unexpected(logger, context.Request.Path, ex);
            await OAuthResponse.ErrorAsync(context, OAuthProtocol.ServerError, "INTERNAL", "Internal error.");
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2300, Level = LogLevel.Information, Message = "OAuth request to {Path} refused: {Reason}")]
        public static partial void Refused(ILogger logger, PathString path, string reason);

        [LoggerMessage(EventId = 2301, Level = LogLevel.Error, Message = "OAuth request to {Path} failed unexpectedly")]
        public static partial void Unexpected(ILogger logger, PathString path, Exception exception);
    }
}
