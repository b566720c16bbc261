namespace Broker.Console.Tests.Infrastructure;

/// <summary>Deadline-bound polling for state another component reaches on its own (never a fixed sleep).</summary>
public static class Eventually
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(15);

    public static async Task TrueAsync(Func<bool> condition, string because) => await TrueAsync(() => Task.FromResult(condition()), because);

    public static async Task TrueAsync(Func<Task<bool>> condition, string because)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail(because);
            }

            await Task.Delay(20);
        }
    }
}
