using System.Collections.Concurrent;

namespace Broker.Core.Ssf.Transmitter;

/// <summary>
/// Wakes whoever waits on a stream (a long poll, a pusher) when any node queued SETs on it.
/// Take the signal before reading the queue, then wait on it: an enqueue between the read and
/// the wait still wakes the waiter.
/// </summary>
public sealed class SsfQueueSignals
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _signals = new(StringComparer.Ordinal);

    public SsfQueueSignals(ISsfStreamStore store) => store.Enqueued += Raise;

    /// <summary>Completes once SETs are queued on <paramref name="streamId"/> after this call.</summary>
    public Task Next(string streamId) =>
        _signals.GetOrAdd(streamId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    public void Raise(string streamId)
    {
        if (_signals.TryRemove(streamId, out var signal))
        {
            signal.TrySetResult();
        }
    }
}
