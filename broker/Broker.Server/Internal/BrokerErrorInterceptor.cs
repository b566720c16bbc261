using Broker.Core.Diagnostics;
using Broker.Core.Errors;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Broker.Server.Internal;

/// <summary>
/// The one place domain refusals become gRPC statuses: status code from the kind, plus a
/// google.rpc.ErrorInfo (reason, domain, metadata). Anything unexpected becomes INTERNAL with
/// no detail, so internals never reach a caller.
/// </summary>
internal sealed partial class BrokerErrorInterceptor : Interceptor
{
    private readonly ILogger<BrokerErrorInterceptor> _logger;
    private readonly BrokerMetrics _metrics;

    public BrokerErrorInterceptor(ILogger<BrokerErrorInterceptor> logger, BrokerMetrics metrics)
    {
        _logger = logger;
        _metrics = metrics;
    }

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context);
        }
        catch (Exception ex) when (Translate(ex, context) is { } rpc)
        {
            throw rpc;
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(request, responseStream, context);
        }
        catch (Exception ex) when (Translate(ex, context) is { } rpc)
        {
            throw rpc;
        }
    }

    private RpcException? Translate(Exception exception, ServerCallContext context)
    {
        switch (exception)
        {
            case RpcException:
                return null;
            case BrokerException broker:
                // Past a refusal budget the metric counts them: a line each would let a flood fill the log instead.
                if (broker.Reason != BrokerErrors.RateLimited)
                {
                    Log.Refused(_logger, context.Method, broker.Reason);
                }

                _metrics.Refused(context.Method, broker.Reason, StatusName(ToStatusCode(broker.Kind)));
                return ToRpcException(broker);
            case OperationCanceledException when context.CancellationToken.IsCancellationRequested:
                return new RpcException(new Grpc.Core.Status(StatusCode.Cancelled, "The call was cancelled."));
            default:
                Log.Unexpected(_logger, context.Method, exception);
                return new RpcException(new Grpc.Core.Status(StatusCode.Internal, "Internal error."));
        }
    }

    public static RpcException ToRpcException(BrokerException exception)
    {
        var info = new ErrorInfo { Reason = exception.Reason, Domain = BrokerErrors.Domain };
        foreach (var (key, value) in exception.Metadata)
        {
            info.Metadata[key] = value;
        }

        var status = new Google.Rpc.Status
        {
            Code = (int)ToStatusCode(exception.Kind),
            Message = exception.Message,
            Details = { Any.Pack(info) },
        };
        return status.ToRpcException();
    }

    /// <summary>The canonical upper-case name, as in docs/errors.md (PERMISSION_DENIED).</summary>
    private static string StatusName(StatusCode code) => code switch
    {
        StatusCode.InvalidArgument => "INVALID_ARGUMENT",
        StatusCode.Unauthenticated => "UNAUTHENTICATED",
        StatusCode.PermissionDenied => "PERMISSION_DENIED",
        StatusCode.FailedPrecondition => "FAILED_PRECONDITION",
        StatusCode.NotFound => "NOT_FOUND",
        StatusCode.ResourceExhausted => "RESOURCE_EXHAUSTED",
        StatusCode.Unavailable => "UNAVAILABLE",
        _ => "INTERNAL",
    };

    public static StatusCode ToStatusCode(FailureKind kind) => kind switch
    {
        FailureKind.InvalidArgument => StatusCode.InvalidArgument,
        FailureKind.Unauthenticated => StatusCode.Unauthenticated,
        FailureKind.PermissionDenied => StatusCode.PermissionDenied,
        FailureKind.FailedPrecondition => StatusCode.FailedPrecondition,
        FailureKind.NotFound => StatusCode.NotFound,
        FailureKind.ResourceExhausted => StatusCode.ResourceExhausted,
        FailureKind.Unavailable => StatusCode.Unavailable,
        _ => StatusCode.Internal,
    };

    private static partial class Log
    {
        [LoggerMessage(EventId = 5000, Level = LogLevel.Information, Message = "{Method} refused: {Reason}")]
        public static partial void Refused(ILogger logger, string method, string reason);

        [LoggerMessage(EventId = 5001, Level = LogLevel.Error, Message = "{Method} failed unexpectedly")]
        public static partial void Unexpected(ILogger logger, string method, Exception exception);
    }
}
