using Google.Rpc;
using Grpc.Core;

namespace Broker.Client;

/// <summary>A refusal from Broker, read from the gRPC status and its google.rpc.ErrorInfo.</summary>
/// <param name="Status">The gRPC status code.</param>
/// <param name="Reason">Stable reason code (docs/errors.md), or null when the server sent none.</param>
/// <param name="Message">Human-readable explanation.</param>
/// <param name="Metadata">Facts to act on, e.g. <c>scopes</c> for SCOPE_NOT_ALLOWED.</param>
public sealed record BrokerRefusal(StatusCode Status, string? Reason, string Message, IReadOnlyDictionary<string, string> Metadata)
{
    /// <summary>The ErrorInfo domain Broker uses for its reason codes.</summary>
    public const string Domain = "broker.v1";

    /// <summary>
    /// True when the call never got a decision from Broker: the broker could not be reached,
    /// timed out, or said it cannot answer now (UNAVAILABLE). Retrying later may succeed;
    /// every other refusal is a decision that retrying unchanged will not alter.
    /// </summary>
    public bool IsUnavailable => Status is StatusCode.Unavailable or StatusCode.DeadlineExceeded
        || (Reason is null && Status is StatusCode.Unknown or StatusCode.Internal or StatusCode.Unimplemented);

    /// <summary>
    /// For <c>RATE_LIMITED</c> (the caller's recent requests were refused more often than its
    /// refusal budget allows): how long until the budget refills; null for every other refusal.
    /// </summary>
    public TimeSpan? RetryAfter =>
        Reason == "RATE_LIMITED" && Metadata.TryGetValue("retry_after_seconds", out var seconds)
            && long.TryParse(seconds, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value)
            ? TimeSpan.FromSeconds(value)
            : null;

    /// <summary>Reads the status and, when present, the <c>broker.v1</c> ErrorInfo from a failed call.</summary>
    public static BrokerRefusal From(RpcException exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        var info = exception.GetRpcStatus()?.GetDetail<ErrorInfo>();
        return new BrokerRefusal(
            exception.StatusCode,
            info?.Reason,
            exception.Status.Detail,
            info is null ? new Dictionary<string, string>() : new Dictionary<string, string>(info.Metadata));
    }

    /// <inheritdoc />
    public override string ToString() => Reason is null ? $"{Status}: {Message}" : $"{Status} {Reason}: {Message}";
}
