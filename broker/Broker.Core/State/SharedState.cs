using Broker.Core.Errors;

namespace Broker.Core.State;

/// <summary>Calls to shared state (Redis in production) fail closed with one refusal.</summary>
internal static class SharedState
{
    /// <summary>Runs <paramref name="call"/>; anything but a refusal or a cancellation becomes <c>UNAVAILABLE / STATE_UNAVAILABLE</c>.</summary>
    public static async Task<T> CallAsync<T>(Func<ValueTask<T>> call)
    {
        try
        {
            return await call();
        }
        catch (Exception ex) when (ex is not BrokerException and not OperationCanceledException)
        {
            throw BrokerErrors.Unavailable(BrokerErrors.StateUnavailable, "Broker state cannot be reached; try again.", ex);
        }
    }

    /// <inheritdoc cref="CallAsync{T}"/>
    public static Task CallAsync(Func<ValueTask> call) => CallAsync(async () =>
    {
        await call();
        return true;
    });
}
