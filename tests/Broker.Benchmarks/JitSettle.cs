using System.Diagnostics;
using System.Runtime;

namespace Broker.Benchmarks;

/// <summary>
/// Warm-up that lasts until the JIT is done. Tiered compilation (tier 0, then an instrumented
/// tier for dynamic PGO, then tier 1) keeps recompiling hot methods on a background thread for
/// tens of seconds after start; a level measured meanwhile charges that thread's CPU (about half
/// a core here) to the calls, most visibly at one caller. So each system is driven until fewer
/// than <see cref="Stragglers"/> methods are compiled in <see cref="Quiet"/> (rarely called
/// methods, such as timers', keep trickling in for minutes), within <see cref="Bound"/>.
/// </summary>
internal static class JitSettle
{
    public static readonly TimeSpan Quiet = TimeSpan.FromSeconds(2);
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(45);
    public const int Stragglers = 10;

    /// <summary>Drives <paramref name="callers"/> of <paramref name="call"/> until the JIT is quiet; returns how long that took and whether it settled.</summary>
    public static async Task<(TimeSpan Took, bool Settled, long Methods)> RunAsync(int callers, Func<int, Func<DateTime, Task>> call)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < Bound)
        {
            var before = JitInfo.GetCompiledMethodCount();
            await LoadRunner.RunAsync(callers, TimeSpan.Zero, Quiet, call);
            if (JitInfo.GetCompiledMethodCount() - before < Stragglers)
            {
                return (clock.Elapsed, true, before);
            }
        }

        return (clock.Elapsed, false, JitInfo.GetCompiledMethodCount());
    }
}
