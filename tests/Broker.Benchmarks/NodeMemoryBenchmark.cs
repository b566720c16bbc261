using System.Diagnostics;
using System.Globalization;
using System.Text;
using Broker.Testing;
using Broker.V1;
using Grpc.Core;
using StackExchange.Redis;

namespace Broker.Benchmarks;

/// <summary>
/// What a node and its Redis hold for live work: one broker node in production mode (Redis with
/// AOF <c>always</c>, the fsync'd audit file) is given <c>--tasks</c> live tasks and then
/// <c>--tokens</c> live tokens in all, every one through the real issuance path (gRPC
/// IssueCredential from many callers at once). After each phase the node's managed heap (after a
/// compacting full GC), its working set and Redis's <c>used_memory</c> are read, so the cost of a
/// task and of a token come out separately. The run stops by itself at <c>--max-minutes</c> and
/// then reports what it reached.
/// </summary>
internal static class NodeMemoryBenchmark
{
    private static readonly TimeSpan Progress = TimeSpan.FromSeconds(15);

    /// <summary>More refusals than this and the numbers would describe an error path: stop.</summary>
    private const int MaxErrors = 1_000;

    public static async Task<string> RunAsync(string[] args)
    {
        var options = NodeMemoryOptions.Parse(args);
        var work = Directory.CreateTempSubdirectory("broker-bench-memory-").FullName;
        try
        {
            return await RunInAsync(work, options);
        }
        finally
        {
            try
            {
                Directory.Delete(work, recursive: true);
            }
            catch (IOException)
            {
                // A temp folder left behind is harmless.
            }
        }
    }

    private static async Task<string> RunInAsync(string work, NodeMemoryOptions options)
    {
        var loadBefore = Report.LoadAverage();
        Console.WriteLine($"Node memory: {options.Tasks:N0} tasks, {options.Tokens:N0} tokens, {options.Agents:N0} agents, {options.Callers} callers, " +
                          $"stops after {options.MaxMinutes} min{(options.RepeatFromMemory ? ", Broker:Issuance:RepeatFromMemory on" : "")}; load average {loadBefore}");
        await using var redis = await RedisServer.StartAsync();
        using var trust = new TestTrustDomain("example.org");
        var jwks = trust.WriteJwksFile();

        // Every token must still be live when the last snapshot is taken: the phase allows a
        // lifetime longer than the run may last.
        var tokenTtl = TimeSpan.FromMinutes(options.MaxMinutes + 10);
        await using var broker = await BenchmarkBroker.StartAsync(work, jwks, redis.Configuration, new Ablations(false, false, false), null,
            policy: path => BenchmarkBroker.Policy(path, planningMaxTtl: $"{tokenTtl.TotalMinutes:F0}m"),
            settings: options.RepeatFromMemory ? new Dictionary<string, string?> { ["Broker:Issuance:RepeatFromMemory"] = "true" } : null);
        await using var redisInfo = await ConnectionMultiplexer.ConnectAsync(redis.Configuration + ",allowAdmin=true"); // INFO memory only
        var redisServer = redisInfo.GetServer(redisInfo.GetEndPoints()[0]);
        using var channel = broker.CreateChannel();
        var client = new CredentialService.CredentialServiceClient(channel);

        // One JWT-SVID per agent, reused (the validated-proof cache holds them all), valid for the whole run.
        var svids = Enumerable.Range(0, options.Agents)
            .Select(a => trust.MintSvid(trust.SpiffeId($"/agents/mem-{a}"), BenchmarkBroker.Audience, DateTimeOffset.UtcNow, tokenTtl))
            .ToArray();
        IssueCredentialRequest For(string taskId, int agent) => new()
        {
            TaskId = taskId,
            Phase = Phase.Planning,
            Scopes = { "repo:read", "tickets:read" },
            Audience = BenchmarkBroker.ResourceAudience,
            Attestation = new AttestationProof { JwtSvid = svids[agent] },
        };

        // Task t belongs to agent t mod agents; call i of the token phase refreshes task i mod tasks.
        IssueCredentialRequest Live(long i)
        {
            var task = (int)(i % options.Tasks);
            return For($"mem-task-{task}", task % options.Agents);
        }

        try
        {
            _ = await client.IssueCredentialAsync(For("mem-smoke", 0), deadline: DateTime.UtcNow.AddSeconds(10));
        }
        catch (RpcException ex)
        {
            return $"The broker refused the first request ({ex.StatusCode}: {ex.Status.Detail}); nothing measured.";
        }

        // Warm-up on tasks of its own, so the baseline already holds the connection buffers,
        // thread-pool threads and JIT output that the callers' concurrency needs.
        var warmTasks = Math.Min(options.Callers, options.Agents);
        var warm = await IssueAsync("warm-up", 0, 50L * options.Callers, options.Callers, i => For($"mem-warm-{i % warmTasks}", (int)(i % warmTasks)), client, DateTime.UtcNow.AddMinutes(2));
        var baseline = await MemorySnapshot.TakeAsync("after start and warm-up", 1 + warmTasks, 1 + warm.Issued, redisServer, broker.AuditPath);
        Console.WriteLine(baseline);

        var deadline = DateTime.UtcNow.AddMinutes(options.MaxMinutes);
        var opened = await IssueAsync("tasks", 0, options.Tasks, options.Callers, Live, client, deadline);
        var afterTasks = await MemorySnapshot.TakeAsync("after the tasks opened (one token each)", baseline.Tasks + opened.Issued, baseline.Tokens + opened.Issued, redisServer, broker.AuditPath);
        Console.WriteLine(afterTasks);

        var refreshed = opened.Issued == options.Tasks
            ? await IssueAsync("tokens", options.Tasks, options.Tokens, options.Callers, Live, client, deadline)
            : new PhaseResult(0, 0, null, TimeSpan.Zero, TimedOut: true);
        var afterTokens = await MemorySnapshot.TakeAsync("after the further tokens", afterTasks.Tasks, afterTasks.Tokens + refreshed.Issued, redisServer, broker.AuditPath);
        Console.WriteLine(afterTokens);

        return Markdown(options, loadBefore, Report.LoadAverage(), [baseline, afterTasks, afterTokens], opened, refreshed);
    }

    private sealed record PhaseResult(long Issued, long Errors, string? FirstError, TimeSpan Took, bool TimedOut)
    {
        public double PerSecond => Took > TimeSpan.Zero ? Issued / Took.TotalSeconds : double.NaN;
    }

    /// <summary>Issues calls <paramref name="from"/> to <paramref name="to"/> (exclusive) from <paramref name="callers"/> closed loops, until done or past <paramref name="deadline"/>.</summary>
    private static async Task<PhaseResult> IssueAsync(string phase, long from, long to, int callers, Func<long, IssueCredentialRequest> request, CredentialService.CredentialServiceClient client, DateTime deadline)
    {
        var next = from - 1;
        long issued = 0, errors = 0;
        string? firstError = null;
        var clock = Stopwatch.StartNew();

        async Task CallerAsync()
        {
            while (DateTime.UtcNow < deadline && Interlocked.Read(ref errors) < MaxErrors)
            {
                var i = Interlocked.Increment(ref next);
                if (i >= to)
                {
                    return;
                }

                try
                {
                    await client.IssueCredentialAsync(request(i), deadline: DateTime.UtcNow + LoadRunner.CallDeadline);
                    Interlocked.Increment(ref issued);
                }
                catch (RpcException ex)
                {
                    Interlocked.Increment(ref errors);
                    Interlocked.CompareExchange(ref firstError, $"{ex.StatusCode}: {ex.Status.Detail}", null);
                }
            }
        }

        var all = Task.WhenAll(Enumerable.Range(0, callers).Select(_ => Task.Run(CallerAsync)));
        while (await Task.WhenAny(all, Task.Delay(Progress)) != all)
        {
            var done = Interlocked.Read(ref issued);
            Console.WriteLine($"  {phase}: {done:N0} of {to - from:N0} issued in {clock.Elapsed.TotalSeconds:F0} s ({done / clock.Elapsed.TotalSeconds:F0}/s), {Interlocked.Read(ref errors)} errors");
        }

        await all;
        var result = new PhaseResult(issued, errors, firstError, clock.Elapsed, TimedOut: issued + errors < to - from);
        Console.WriteLine($"  {phase}: {result.Issued:N0} issued in {result.Took.TotalSeconds:F0} s ({result.PerSecond:F0}/s), {result.Errors} errors{(result.TimedOut ? ", stopped early" : "")}");
        return result;
    }

    private static string Markdown(NodeMemoryOptions options, string loadBefore, string loadAfter, IReadOnlyList<MemorySnapshot> snapshots, PhaseResult opened, PhaseResult refreshed)
    {
        static string MiB(double bytes) => (bytes / (1024 * 1024)).ToString("F1", CultureInfo.InvariantCulture);
        static string PerItem(long bytes, long count) => count > 0 ? (bytes / (double)count).ToString("F0", CultureInfo.InvariantCulture) : "–";
        var (baseline, afterTasks, afterTokens) = (snapshots[0], snapshots[1], snapshots[2]);
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"## Node memory: {afterTokens.Tasks - baseline.Tasks:N0} live tasks, {afterTokens.Tokens - baseline.Tokens:N0} live tokens{(options.RepeatFromMemory ? ", Broker:Issuance:RepeatFromMemory on" : "")} ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC)");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"{Environment.ProcessorCount} cores, .NET {Environment.Version}, server GC; one node in production mode (Redis AOF always, fsync'd audit) in this process with its gRPC callers; " +
            $"{options.Agents:N0} agents, {options.Callers} callers. Load average before/after: {loadBefore} / {loadAfter}.");
        sb.AppendLine();
        sb.AppendLine("| after | live tasks | live tokens | managed heap MiB | GC committed MiB | working set MiB | Redis used_memory MiB | Redis keys | audit on disk MiB |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var s in snapshots)
        {
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {s.Label} | {s.Tasks:N0} | {s.Tokens:N0} | {MiB(s.HeapBytes)} | {MiB(s.CommittedBytes)} | {MiB(s.WorkingSetBytes)} | {MiB(s.RedisUsedBytes)} | {s.RedisKeys:N0} | {MiB(s.AuditBytes)} |");
        }

        var tasks = afterTasks.Tasks - baseline.Tasks;
        var tokens = afterTokens.Tokens - afterTasks.Tokens;
        sb.AppendLine();
        sb.AppendLine("| per | managed heap bytes | working set bytes | Redis bytes | audit bytes |");
        sb.AppendLine("|---|---:|---:|---:|---:|");
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"| task opened, with its first token ({tasks:N0}) | {PerItem(afterTasks.HeapBytes - baseline.HeapBytes, tasks)} | {PerItem(afterTasks.WorkingSetBytes - baseline.WorkingSetBytes, tasks)} | {PerItem(afterTasks.RedisUsedBytes - baseline.RedisUsedBytes, tasks)} | {PerItem(afterTasks.AuditBytes - baseline.AuditBytes, tasks)} |");
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"| further token on a live task ({tokens:N0}) | {PerItem(afterTokens.HeapBytes - afterTasks.HeapBytes, tokens)} | {PerItem(afterTokens.WorkingSetBytes - afterTasks.WorkingSetBytes, tokens)} | {PerItem(afterTokens.RedisUsedBytes - afterTasks.RedisUsedBytes, tokens)} | {PerItem(afterTokens.AuditBytes - afterTasks.AuditBytes, tokens)} |");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"Issuance: tasks opened at {opened.PerSecond:F0}/s ({opened.Issued:N0} in {opened.Took.TotalSeconds:F0} s), further tokens at {refreshed.PerSecond:F0}/s ({refreshed.Issued:N0} in {refreshed.Took.TotalSeconds:F0} s); " +
            $"errors {opened.Errors + refreshed.Errors}{(opened.TimedOut || refreshed.TimedOut ? $"; stopped at the {options.MaxMinutes}-minute bound before reaching the targets" : "")}.");
        if ((opened.FirstError ?? refreshed.FirstError) is { } error)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"First error: {error}");
        }

        sb.AppendLine();
        sb.AppendLine("Managed heap is `GC.GetGCMemoryInfo().HeapSizeBytes` after a blocking compacting full GC; the process also holds the callers' " +
                      "gRPC client, whose state is in the baseline. Working set includes memory the server GC keeps committed for reuse.");
        return sb.ToString();
    }
}

/// <summary>Node and Redis memory at one moment, after a compacting full GC.</summary>
internal sealed record MemorySnapshot(string Label, long Tasks, long Tokens, long HeapBytes, long CommittedBytes, long WorkingSetBytes, long RedisUsedBytes, long RedisKeys, long AuditBytes)
{
    public static async Task<MemorySnapshot> TakeAsync(string label, long tasks, long tokens, IServer redis, string auditPath)
    {
        for (var i = 0; i < 2; i++)
        {
            // Twice: finalizers run by the first may release more for the second.
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
        }

        var info = GC.GetGCMemoryInfo(GCKind.FullBlocking);
        using var process = Process.GetCurrentProcess();
        var memory = (await redis.InfoAsync("memory")).SelectMany(g => g).ToDictionary(p => p.Key, p => p.Value);
        var keys = await redis.DatabaseSizeAsync();
        var audit = Directory.Exists(auditPath)
            ? new DirectoryInfo(auditPath).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length)
            : File.Exists(auditPath) ? new FileInfo(auditPath).Length : 0;
        return new MemorySnapshot(label, tasks, tokens, info.HeapSizeBytes, info.TotalCommittedBytes, process.WorkingSet64,
            long.Parse(memory["used_memory"], CultureInfo.InvariantCulture), keys, audit);
    }

    public override string ToString() => Channels.Invariant(
        $"  {Label}: {Tasks:N0} tasks, {Tokens:N0} tokens; heap {HeapBytes / 1048576.0:F1} MiB, working set {WorkingSetBytes / 1048576.0:F1} MiB, Redis {RedisUsedBytes / 1048576.0:F1} MiB in {RedisKeys:N0} keys");
}

/// <summary>node-memory's options.</summary>
internal sealed record NodeMemoryOptions(int Tasks, long Tokens, int Agents, int Callers, int MaxMinutes, bool RepeatFromMemory = false)
{
    public static NodeMemoryOptions Parse(string[] args)
    {
        int tasks = 100_000, agents = 1_000, callers = 64, maxMinutes = 20;
        var fromMemory = false;
        long tokens = 1_000_000;
        for (var i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            switch (args[i])
            {
                case "--tasks": tasks = Bounded(Value(), 1, 10_000_000, "--tasks"); break;
                case "--tokens": tokens = Bounded(Value(), 1, 100_000_000, "--tokens"); break;
                case "--agents": agents = Bounded(Value(), 1, 100_000, "--agents"); break;
                case "--callers": callers = Bounded(Value(), 1, 512, "--callers"); break;
                case "--max-minutes": maxMinutes = Bounded(Value(), 1, 45, "--max-minutes"); break;
                case "--repeat-from-memory": fromMemory = true; break;
                default: throw new ArgumentException($"Unknown option {args[i]}; node-memory takes --tasks, --tokens, --agents, --callers, --max-minutes, --repeat-from-memory.");
            }
        }

        if (tokens < tasks)
        {
            throw new ArgumentException("--tokens counts every live token, the first of each task included, so it cannot be below --tasks.");
        }

        // The issuance options cap a workload's retained tasks (MaxTasksPerWorkload, 100,000 by default).
        if ((tasks + agents - 1) / agents > 100_000)
        {
            throw new ArgumentException("--agents is too small: no agent may hold more than 100,000 tasks.");
        }

        return new NodeMemoryOptions(tasks, tokens, agents, callers, maxMinutes, fromMemory);
    }

    private static int Bounded(string text, int min, int max, string name) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new ArgumentException($"{name} must be a whole number from {min} to {max}.");
}
