using System.Diagnostics;
using Grpc.Core;

namespace Broker.Benchmarks;

/// <summary>What one system did at one concurrency level, over the measured window only.</summary>
internal sealed record LevelResult(
    int Concurrency,
    long Completed,
    long Errors,
    TimeSpan Window,
    double P50Ms,
    double P99Ms,
    double MaxMs,
    double ProcessCpuUsPerCall,
    double ExternalCpuUsPerCall,
    int Gen0,
    int Gen1,
    int Gen2,
    string? FirstError,
    double AllocatedBytesPerCall = double.NaN)
{
    public double PerSecond => Completed / Window.TotalSeconds;
}

/// <summary>
/// Closed-loop load: <c>concurrency</c> callers, each awaiting one call after another over one
/// shared channel or HTTP client. A warm-up runs first at the same concurrency; then a fixed window is
/// measured. Only calls that start and end inside the window count, so throughput and latency
/// describe the same calls.
/// </summary>
internal static class LoadRunner
{
    /// <summary>No single call may hang the run; a call slower than this counts as an error.</summary>
    public static readonly TimeSpan CallDeadline = TimeSpan.FromSeconds(10);

    private const int Idle = 0;
    private const int Recording = 1;
    private const int Done = 2;

    /// <param name="callerFactory">Builds caller <c>i</c>'s call; it receives the call's deadline.</param>
    /// <param name="externalCpuSeconds">CPU seconds used so far by a helper process (Redis), or null.</param>
    public static async Task<LevelResult> RunAsync(
        int concurrency,
        TimeSpan warmup,
        TimeSpan window,
        Func<int, Func<DateTime, Task>> callerFactory,
        Func<Task<double>>? externalCpuSeconds = null,
        Breakdown? breakdown = null)
    {
        var state = Idle;
        var latencies = new List<long>[concurrency];
        var errors = 0L;
        string? firstError = null;

        async Task CallerAsync(int index)
        {
            var call = callerFactory(index);
            var mine = latencies[index] = new List<long>(1 << 15);
            while (Volatile.Read(ref state) != Done)
            {
                var recordingAtStart = Volatile.Read(ref state) == Recording;
                var start = Stopwatch.GetTimestamp();
                try
                {
                    await call(DateTime.UtcNow + CallDeadline);
                }
                catch (Exception ex) when (ex is RpcException or HttpRequestException or TaskCanceledException)
                {
                    if (recordingAtStart)
                    {
                        Interlocked.Increment(ref errors);
                    }

                    Interlocked.CompareExchange(ref firstError, ex is RpcException rpc ? $"{rpc.StatusCode}: {rpc.Status.Detail}" : ex.Message, null);
                    continue;
                }

                var end = Stopwatch.GetTimestamp();
                if (recordingAtStart && Volatile.Read(ref state) == Recording)
                {
                    mine.Add(end - start);
                }
            }
        }

        var callers = Enumerable.Range(0, concurrency).Select(i => Task.Run(() => CallerAsync(i))).ToArray();
        await Task.Delay(warmup);

        var process = Process.GetCurrentProcess();
        var gc0 = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2));
        var externalStart = externalCpuSeconds is null ? 0 : await externalCpuSeconds();
        process.Refresh();
        var cpuStart = process.TotalProcessorTime;
        // Precise: the approximate counter skips the threads' current allocation contexts, and
        // under server GC it read "no allocation" or half the figure for some windows. Reading it
        // precisely costs microseconds, twice per window.
        var allocatedStart = GC.GetTotalAllocatedBytes(precise: true);
        var clock = Stopwatch.StartNew();
        breakdown?.Start();
        Volatile.Write(ref state, Recording);
        await Task.Delay(window);
        Volatile.Write(ref state, Done);
        breakdown?.Stop();
        var elapsed = clock.Elapsed;
        process.Refresh();
        var cpu = process.TotalProcessorTime - cpuStart;
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedStart;
        var gc1 = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2));
        var externalEnd = externalCpuSeconds is null ? 0 : await externalCpuSeconds();
        await Task.WhenAll(callers);

        var all = latencies.SelectMany(l => l).ToArray();
        Array.Sort(all);
        var completed = all.LongLength;
        double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
        double Percentile(double p) => completed == 0 ? double.NaN : Ms(all[Math.Min(completed - 1, (long)Math.Ceiling(p * completed) - 1)]);

        return new LevelResult(
            concurrency,
            completed,
            errors,
            elapsed,
            Percentile(0.50),
            Percentile(0.99),
            completed == 0 ? double.NaN : Ms(all[^1]),
            completed == 0 ? double.NaN : cpu.TotalMicroseconds / completed,
            completed == 0 || externalCpuSeconds is null ? double.NaN : (externalEnd - externalStart) * 1e6 / completed,
            gc1.Item1 - gc0.Item1,
            gc1.Item2 - gc0.Item2,
            gc1.Item3 - gc0.Item3,
            firstError,
            // A window in which the counter did not move has no figure to give.
            completed == 0 || allocated <= 0 ? double.NaN : allocated / (double)completed);
    }
}
