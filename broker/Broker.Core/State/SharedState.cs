using System.Diagnostics;
using Broker.Core.Diagnostics;
using Broker.Core.Errors;
using Broker.Core.Revocation;

namespace Broker.Core.State;

/// <summary>Calls to shared state (Redis in production) fail closed with one refusal, and are timed and traced.</summary>
internal static class SharedState
{
    /// <summary>
    /// Runs <paramref name="call"/> as <paramref name="operation"/>; a store that lost its data
    /// becomes <c>UNAVAILABLE / REVOCATION_STATE_LOST</c>, anything else but a refusal or a
    /// cancellation <c>UNAVAILABLE / STATE_UNAVAILABLE</c>.
    /// </summary>
    public static async Task<T> CallAsync<T>(BrokerMetrics metrics, string operation, Func<ValueTask<T>> call)
    {
        using var activity = BrokerActivity.Source.StartActivity("broker.state " + operation, ActivityKind.Client);
        var started = Stopwatch.GetTimestamp();
        try
        {
            var result = await call();
            metrics.StateCall(operation, succeeded: true, Stopwatch.GetElapsedTime(started));
            return result;
        }
        catch (RevocationStateLostException ex)
        {
            metrics.StateCall(operation, succeeded: false, Stopwatch.GetElapsedTime(started));
            activity?.SetStatus(ActivityStatusCode.Error, BrokerErrors.RevocationStateLost);
            throw BrokerErrors.Unavailable(BrokerErrors.RevocationStateLost, "Revocation state was lost (Redis came back empty); an operator must restore the revocation epoch. Everything is refused until then.", ex);
        }
        catch (Exception ex) when (ex is not BrokerException and not OperationCanceledException)
        {
            metrics.StateCall(operation, succeeded: false, Stopwatch.GetElapsedTime(started));
            activity?.SetStatus(ActivityStatusCode.Error, BrokerErrors.StateUnavailable);
            throw BrokerErrors.Unavailable(BrokerErrors.StateUnavailable, "Broker state cannot be reached; try again.", ex);
        }
    }

    /// <inheritdoc cref="CallAsync{T}"/>
    public static Task CallAsync(BrokerMetrics metrics, string operation, Func<ValueTask> call) => CallAsync(metrics, operation, async () =>
    {
        await call();
        return true;
    });
}
