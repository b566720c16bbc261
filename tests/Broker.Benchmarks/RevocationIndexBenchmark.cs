using System.Buffers.Text;
using System.Diagnostics;
using System.Globalization;
using System.Runtime;
using System.Security.Cryptography;
using System.Text;
using Broker.Revocation;

namespace Broker.Benchmarks;

/// <summary>
/// What a revocation check costs a resource server (and a broker node) with a large index: the
/// <see cref="RevocationIndex"/> the SDK and the broker share, filled with 1,000,000 revoked
/// tokens plus task, phase, agent and issued-before entries, then timed over millions of
/// <c>IsRevoked</c> calls that hit and miss; and the managed memory the index holds per entry.
/// Reports figures; never passes or fails on them. Targets: check ≤ 100 ns, ≤ 150 bytes per entry.
/// </summary>
/// <remarks>
/// Usage: <c>revocation-index [--entries N] [--lookups N]</c> (defaults 1,000,000 and 10,000,000).
/// Each lookup parses the token id from its base64url text, as a real check does.
/// </remarks>
public static class RevocationIndexBenchmark
{
    private const int DistinctProbes = 1 << 16;

    public static async Task<string> RunAsync(string[] args)
    {
        var entries = Option(args, "--entries", 1_000_000, 1_000, 50_000_000);
        var lookups = Option(args, "--lookups", 10_000_000, 10_000_000, 1_000_000_000);
        var now = DateTimeOffset.UtcNow;
        var expires = now.AddHours(1);

        // Everything the index does not own is made first, so the memory figure is the index's alone.
        var revokedIds = new string[entries];
        for (var i = 0; i < entries; i++)
        {
            revokedIds[i] = NewTokenId();
        }

        var others = OtherEntries(now, expires);
        // A real check reads a token id just parsed from the JWT, so it is in cache: each probe gets
        // its own copy of the id, allocated in probe order, rather than pointing into revokedIds
        // (whose strings lie scattered over the heap and would time cache misses on the string).
        var hits = Probes(i => new string(revokedIds[Random.Shared.Next(entries)]), now);
        var misses = Probes(_ => NewTokenId(), now);

        var before = GC.GetTotalMemory(forceFullCollection: true);
        var index = new RevocationIndex();
        var fill = Stopwatch.StartNew();
        ApplyTokens(index, revokedIds, now, expires);
        foreach (var entry in others)
        {
            index.Apply(entry);
        }

        fill.Stop();
        var after = GC.GetTotalMemory(forceFullCollection: true);
        var held = index.Count;
        var bytesPerEntry = (after - before) / (double)held;

        // Every probe must answer as expected, or the timing means nothing.
        foreach (var probe in hits)
        {
            if (!index.IsRevoked(probe, out _))
            {
                throw new InvalidOperationException("A revoked token was not found.");
            }
        }

        foreach (var probe in misses)
        {
            if (index.IsRevoked(probe, out _))
            {
                throw new InvalidOperationException("A live token was reported revoked.");
            }
        }

        Measure(index, hits, 2_000_000);
        Measure(index, misses, 2_000_000);
        var (hitNs, hitCpuNs) = MeasureTimes(index, hits, lookups);
        var (missNs, missCpuNs) = MeasureTimes(index, misses, lookups);
        var noSelectors = WithoutSelectorEntries(revokedIds, now, expires);
        Measure(noSelectors, misses, 2_000_000);
        var (tokensOnlyMissNs, tokensOnlyMissCpuNs) = MeasureTimes(noSelectors, misses, lookups);
        var parseNs = MeasureParse(hits, lookups);
        var threads = Environment.ProcessorCount;
        var parallelNs = await MeasureParallelAsync(index, hits, misses, lookups, threads);
        GC.KeepAlive(revokedIds);

        var md = new StringBuilder();
        md.AppendLine("## Revocation check (RevocationIndex.IsRevoked)");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"{held:N0} entries ({entries:N0} tokens + {others.Count:N0} task, task-phase, agent, trust-domain and issued-before), filled in {fill.Elapsed.TotalSeconds:F2} s; " +
                      $"{lookups:N0} lookups per row after warm-up; {Environment.ProcessorCount} cores, .NET {Environment.Version}, server GC {GCSettings.IsServerGC}.");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Load average {Report.LoadAverage()}. CPU time is the process's during the loop (its other threads idle): on a busy machine it leaves out the time the thread waited for a core.");
        md.AppendLine();
        md.AppendLine("| measure | wall | CPU | target |");
        md.AppendLine("|---|---:|---:|---:|");
        md.AppendLine(CultureInfo.InvariantCulture, $"| check, revoked token (hit), 1 thread | {hitNs:F1} ns/op | {hitCpuNs:F1} ns/op | ≤ 200 ns |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| check, live token (miss: every selector consulted), 1 thread | {missNs:F1} ns/op | {missCpuNs:F1} ns/op | ≤ 100 ns |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| check, live token, index of the {entries:N0} token ids alone (no other selector kinds), 1 thread | {tokensOnlyMissNs:F1} ns/op | {tokensOnlyMissCpuNs:F1} ns/op | ≤ 100 ns |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| of which: parsing the token id (base64url to 128 bits) | {parseNs:F1} ns/op | | — |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| check, half hits, {threads} threads at once | {parallelNs:F1} ns/op per thread | | — |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| managed memory per entry | {bytesPerEntry:F0} bytes | | ≤ 150 bytes |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| index total | {(after - before) / 1024.0 / 1024.0:F1} MiB | | — |");
        return md.ToString();
    }

    private static TokenFacts[] Probes(Func<int, string> tokenId, DateTimeOffset now)
    {
        var probes = new TokenFacts[DistinctProbes];
        for (var i = 0; i < DistinctProbes; i++)
        {
            probes[i] = new TokenFacts(tokenId(i), $"spiffe://example.org/agents/a{i % 5000}", $"task-live-{i}", "execution", now.AddMinutes(-5));
        }

        return probes;
    }

    private static double MeasureParse(TokenFacts[] probes, long lookups)
    {
        const int mask = DistinctProbes - 1;
        long parsed = 0;
        var watch = Stopwatch.StartNew();
        for (long i = 0; i < lookups; i++)
        {
            if (RevocationIndex.TryParseTokenId(probes[(int)(i & mask)].TokenId, out _))
            {
                parsed++;
            }
        }

        watch.Stop();
        GC.KeepAlive(parsed);
        return watch.Elapsed.TotalNanoseconds / lookups;
    }

    private static double Measure(RevocationIndex index, TokenFacts[] probes, long lookups) => MeasureTimes(index, probes, lookups).WallNs;

    /// <summary>
    /// Wall time and the process's CPU time per lookup. On a busy machine the thread is preempted
    /// mid-loop and wall time counts the wait; CPU time (the other threads are idle meanwhile)
    /// counts only the lookups.
    /// </summary>
    private static (double WallNs, double CpuNs) MeasureTimes(RevocationIndex index, TokenFacts[] probes, long lookups)
    {
        const int mask = DistinctProbes - 1;
        long found = 0;
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var watch = Stopwatch.StartNew();
        for (long i = 0; i < lookups; i++)
        {
            if (index.IsRevoked(probes[(int)(i & mask)], out _))
            {
                found++;
            }
        }

        watch.Stop();
        var cpuNs = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalNanoseconds / lookups;
        GC.KeepAlive(found);
        return (watch.Elapsed.TotalNanoseconds / lookups, cpuNs);
    }

    private static async Task<double> MeasureParallelAsync(RevocationIndex index, TokenFacts[] hits, TokenFacts[] misses, long lookups, int threads)
    {
        var perThread = Math.Max(1_000_000, lookups / threads);
        using var start = new ManualResetEventSlim();
        var workers = Enumerable.Range(0, threads).Select(t => Task.Factory.StartNew(
            () =>
            {
                start.Wait();
                return Measure(index, t % 2 == 0 ? hits : misses, perThread);
            },
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default)).ToArray();
        start.Set();
        var results = await Task.WhenAll(workers);
        return results.Average();
    }

    // The same revoked token ids and nothing else: the common case of an index whose other maps are empty.
    private static RevocationIndex WithoutSelectorEntries(string[] revokedIds, DateTimeOffset now, DateTimeOffset expires)
    {
        var index = new RevocationIndex();
        ApplyTokens(index, revokedIds, now, expires);
        return index;
    }

    private static void ApplyTokens(RevocationIndex index, string[] revokedIds, DateTimeOffset now, DateTimeOffset expires)
    {
        for (var i = 0; i < revokedIds.Length; i++)
        {
            index.Apply(new RevocationEntry(i.ToString(CultureInfo.InvariantCulture), RevocationSelector.ForToken(revokedIds[i]), "bench", "bench", now, expires));
        }
    }

    private static List<RevocationEntry> OtherEntries(DateTimeOffset now, DateTimeOffset expires)
    {
        var list = new List<RevocationEntry>();
        var id = 0;
        RevocationEntry Entry(RevocationSelector selector) => new($"o{id++}", selector, "bench", "bench", now, expires);
        for (var i = 0; i < 10_000; i++)
        {
            list.Add(Entry(RevocationSelector.ForTask($"task-revoked-{i}")));
        }

        for (var i = 0; i < 1_000; i++)
        {
            list.Add(Entry(RevocationSelector.ForTaskPhase($"task-live-{i}", "planning")));
            list.Add(Entry(RevocationSelector.ForAgent($"spiffe://example.org/agents/revoked-{i}")));
            list.Add(Entry(RevocationSelector.IssuedBeforeTime(now.AddHours(-1), $"spiffe://example.org/agents/a{i}")));
        }

        list.Add(Entry(RevocationSelector.ForTrustDomain("compromised.example")));
        list.Add(Entry(RevocationSelector.IssuedBeforeTime(now.AddHours(-2))));
        return list;
    }

    private static string NewTokenId() => Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(16));

    private static int Option(string[] args, string name, int fallback, int min, int max)
    {
        var at = Array.IndexOf(args, name);
        if (at < 0)
        {
            return fallback;
        }

        if (at + 1 >= args.Length || !int.TryParse(args[at + 1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            throw new ArgumentException($"{name} takes a number from {min:N0} to {max:N0}.");
        }

        return value;
    }
}
