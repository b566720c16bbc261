namespace Broker.Testing;

/// <summary>
/// Deadline-bound polling for state another component reaches on its own (a stream connecting,
/// a feed catching up): never a fixed sleep. Fails with <paramref name="what"/> at the deadline.
/// </summary>
public static class Poll
{
    public static readonly TimeSpan DefaultBound = TimeSpan.FromSeconds(30);

    public static Task UntilAsync(Func<bool> condition, string what, TimeSpan? bound = null) =>
        UntilAsync(() => Task.FromResult(condition()), what, bound);

    /// <summary>The condition is checked every 20 ms until it holds or the bound passes.</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, string what, TimeSpan? bound = null)
    {
        var deadline = DateTime.UtcNow + (bound ?? DefaultBound);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Not reached within {bound ?? DefaultBound}: {what}");
            }

            await Task.Delay(20);
        }
    }
}
