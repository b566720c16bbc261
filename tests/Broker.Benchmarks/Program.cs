using System.Globalization;
using System.Runtime;
using System.Text;
using Broker.Bench.V1;
using Broker.Benchmarks;
using Broker.Testing;
using Broker.V1;
using Grpc.Core;
using Microsoft.IdentityModel.Tokens;
using StackExchange.Redis;

// dotnet run -c Release --project tests/Broker.Benchmarks -- revocation-index [--entries N] [--lookups N]
// dotnet run -c Release --project tests/Broker.Benchmarks -- propagation [--revocations N]
// dotnet run -c Release --project tests/Broker.Benchmarks -- audit-verify [records] [callers]
// dotnet run -c Release --project tests/Broker.Benchmarks -- audit-cost [--callers 64]
// dotnet run -c Release --project tests/Broker.Benchmarks -- risk [--signals 300]
// dotnet run -c Release --project tests/Broker.Benchmarks -- secret-revocation [--leases 200]
// dotnet run -c Release --project tests/Broker.Benchmarks -- refusal-flood [--flooders 16]
// dotnet run -c Release --project tests/Broker.Benchmarks -- token-endpoint [--seconds 10] [--warmup 2] [--concurrency 1,16,64]
// dotnet run -c Release --project tests/Broker.Benchmarks -- node-memory [--tasks 100000] [--tokens 1000000] [--agents 1000] [--callers 64] [--max-minutes 20] [--repeat-from-memory]
if (args.Length > 0 && args[0] is "revocation-index" or "propagation" or "audit-verify" or "audit-cost" or "risk" or "secret-revocation" or "refusal-flood" or "token-endpoint" or "node-memory")
{
    var report = args[0] switch
    {
        "propagation" => await PropagationBenchmark.RunAsync(args[1..]),
        "audit-verify" => await AuditVerifyBenchmark.RunAsync(args[1..]),
        "audit-cost" => await AuditCostBenchmark.RunAsync(args[1..]),
        "risk" => await RiskBenchmark.RunAsync(args[1..]),
        "secret-revocation" => await SecretRevocationBenchmark.RunAsync(args[1..]),
        "refusal-flood" => await RefusalFloodBenchmark.RunAsync(args[1..]),
        "token-endpoint" => await TokenEndpointBenchmark.RunAsync(args[1..]),
        "node-memory" => await NodeMemoryBenchmark.RunAsync(args[1..]),
        _ => await RevocationIndexBenchmark.RunAsync(args[1..]),
    };
    Console.WriteLine(report);
    var reportPath = Path.Combine(RepoRoot(), "artifacts", "bench", args[0] + ".md");
    Directory.CreateDirectory(Path.GetDirectoryName(reportPath)!);
    await File.WriteAllTextAsync(reportPath, report);
    return 0;
}

// dotnet run -c Release --project tests/Broker.Benchmarks -- issuance [--seconds 10] [--warmup 2]
//     [--concurrency 1,16,64] [--repeat-from-memory] [--no-audit] [--no-redis] [--no-proof-cache [--proofs N]] [--breakdown] [--min-threads N] [--out FILE]
if (args.Length == 0 || args[0] != "issuance" || args.Contains("--help") || args.Contains("-h"))
{
    Console.Error.WriteLine("""
        usage: dotnet run -c Release --project tests/Broker.Benchmarks -- issuance [options]
               dotnet run -c Release --project tests/Broker.Benchmarks -- revocation-index [--entries N] [--lookups N]
               dotnet run -c Release --project tests/Broker.Benchmarks -- propagation [--revocations N]
               dotnet run -c Release --project tests/Broker.Benchmarks -- audit-verify [records] [callers]
               dotnet run -c Release --project tests/Broker.Benchmarks -- audit-cost [--callers 64]
               dotnet run -c Release --project tests/Broker.Benchmarks -- risk [--signals 300]
               dotnet run -c Release --project tests/Broker.Benchmarks -- refusal-flood [--flooders 16]
               dotnet run -c Release --project tests/Broker.Benchmarks -- token-endpoint [--seconds 10] [--warmup 2] [--concurrency 1,16,64]
               dotnet run -c Release --project tests/Broker.Benchmarks -- node-memory [--tasks 100000] [--tokens 1000000]
                   [--agents 1000] [--callers 64] [--max-minutes 20] [--repeat-from-memory]
                   (tokens counts every live token, each task's first included)
          --seconds N         measured window per concurrency level (default 10)
          --warmup N          warm-up per level before measuring (default 2)
          --concurrency LIST  comma-separated caller counts (default 1,16,64)
          --no-audit          ablation: no-op audit sink instead of the fsync'd file
          --no-redis          ablation: in-memory store instead of Redis
          --no-proof-cache    cold path: a fresh JWT-SVID per call (pre-minted, own jti), no validated-proof
                              cache; the ceiling then verifies the JWT-SVID before it signs (verify + sign)
          --proofs N          cold path: JWT-SVIDs minted before the run (default 10,000 per second of
                              warm-up + window); a run needing more reuses them and says so
          --repeat-from-memory  run the node with Broker:Issuance:RepeatFromMemory (repeat issuances decided
                              from node memory instead of a Redis check)
          --breakdown         diagnostic: time server total, attestation, Redis store and audit append inside the node
          --min-threads N     diagnostic: ThreadPool.SetMinThreads(N, N) before starting
          --out FILE          markdown report (default artifacts/bench/issuance.md at the repo root)
        """);
    return args.Length == 0 || args[0] != "issuance" ? 2 : 0;
}

var options = BenchOptions.Parse(args[1..]);
if (options.MinThreads is { } minThreads)
{
    ThreadPool.SetMinThreads(minThreads, minThreads);
}

var breakdown = options.Breakdown ? new Breakdown() : null;
var ablations = new Ablations(options.NoAudit, options.NoRedis, options.NoProofCache);
var outPath = options.OutPath ?? Path.Combine(
    RepoRoot(), "artifacts", "bench", ablations.Any || options.RepeatFromMemory ? $"issuance{(options.RepeatFromMemory ? "+repeat-from-memory" : "")}{(options.NoAudit ? "+no-audit" : "")}{(options.NoRedis ? "+no-redis" : "")}{(options.NoProofCache ? "+no-proof-cache" : "")}.md" : "issuance.md");

Console.WriteLine($"Broker issuance benchmark: {Environment.ProcessorCount} cores, .NET {Environment.Version}, server GC {GCSettings.IsServerGC}, " +
                  $"window {options.Seconds}s, warm-up {options.Warmup}s per level, callers {string.Join(",", options.Concurrency)}; ablations: {ablations}; " +
                  $"{(options.RepeatFromMemory ? "Broker:Issuance:RepeatFromMemory on; " : "")}" +
                  $"load average {Report.LoadAverage()}");

var work = Directory.CreateTempSubdirectory("broker-bench-").FullName;
try
{
    await using var redis = await RedisServer.StartAsync();
    using var trust = new TestTrustDomain("example.org");
    var jwks = trust.WriteJwksFile();
    await using var broker = await BenchmarkBroker.StartAsync(work, jwks, redis.Configuration, ablations, breakdown,
        settings: options.RepeatFromMemory ? new Dictionary<string, string?> { ["Broker:Issuance:RepeatFromMemory"] = "true" } : null);
    await using var redisInfo = await ConnectionMultiplexer.ConnectAsync(redis.Configuration + ",allowAdmin=true"); // INFO cpu only
    var redisServer = redisInfo.GetServer(redisInfo.GetEndPoints()[0]);

    using var brokerChannel = broker.CreateChannel();
    var credentials = new CredentialService.CredentialServiceClient(brokerChannel);

    // One agent per caller, each with its own SPIFFE ID, one JWT-SVID reused for every call (as
    // SPIRE agents reuse an SVID for its lifetime) and one task (an agent refreshing its
    // credential within a long task). The SVID outlives the run so no caller re-mints mid-window.
    var maxCallers = options.Concurrency.Max();
    // JIT settling takes up to 3 × 45 s before the first level.
    var svidLifetime = TimeSpan.FromMinutes(Math.Clamp(8 + (options.Seconds + options.Warmup) * options.Concurrency.Count * 2 / 60.0, 8, 55));
    var requests = Enumerable.Range(0, maxCallers).Select(i =>
    {
        var svid = trust.MintSvid(trust.SpiffeId($"/agents/bench-{i}"), BenchmarkBroker.Audience, DateTimeOffset.UtcNow, svidLifetime);
        return new IssueCredentialRequest
        {
            TaskId = $"bench-task-{i}",
            Phase = Phase.Planning,
            Scopes = { "repo:read", "tickets:read" },
            Audience = BenchmarkBroker.ResourceAudience,
            Attestation = new AttestationProof { JwtSvid = svid },
        };
    }).ToArray();
    var signRequests = requests.Select((r, i) => new SignRequest
    {
        Subject = $"spiffe://example.org/agents/bench-{i}",
        TaskId = r.TaskId,
        Scopes = { r.Scopes },
        Audience = r.Audience,
        Attestation = r.Attestation.JwtSvid,
    }).ToArray();

    // The cold path presents a fresh proof on every call, and its ceiling verifies that proof.
    var cold = options.NoProofCache
        ? ColdProofPool.Mint(trust, requests, signRequests, options.Proofs ?? Math.Clamp(10_000 * (options.Seconds + options.Warmup), 10_000, 2_000_000), svidLifetime)
        : null;
    using var proofKey = cold is null ? null : System.Security.Cryptography.ECDsa.Create(trust.Key.ExportParameters(includePrivateParameters: false));
    await using var ceiling = await CeilingServer.StartAsync(proofKey is null ? null : new ECDsaSecurityKey(proofKey) { KeyId = trust.KeyId });
    using var ceilingChannel = ceiling.CreateChannel();
    var signer = new SignService.SignServiceClient(ceilingChannel);

    Func<DateTime, Task> Issue(int i) => cold is null
        ? async deadline => await credentials.IssueCredentialAsync(requests[i], deadline: deadline)
        : async deadline => await credentials.IssueCredentialAsync(cold.NextIssue(), deadline: deadline);
    Func<DateTime, Task> Sign(int i) => cold is null
        ? async deadline => await signer.SignAsync(signRequests[i], deadline: deadline)
        : async deadline => await signer.VerifyAndSignAsync(cold.NextSign(), deadline: deadline);
    async Task<double> RedisCpuSeconds()
    {
        var info = (await redisServer.InfoAsync("cpu")).SelectMany(g => g).ToDictionary(p => p.Key, p => p.Value);
        return double.Parse(info["used_cpu_user"], CultureInfo.InvariantCulture) + double.Parse(info["used_cpu_sys"], CultureInfo.InvariantCulture);
    }

    // Fail fast and loudly when the node refuses: numbers for an error path would be meaningless.
    try
    {
        var first = await credentials.IssueCredentialAsync(requests[0], deadline: DateTime.UtcNow.AddSeconds(10));
        Console.WriteLine($"Smoke call: issued {first.TokenId} to {first.Subject}, scopes [{string.Join(' ', first.GrantedScopes)}].");
        await Sign(0)(DateTime.UtcNow.AddSeconds(10));
        await Issue(0)(DateTime.UtcNow.AddSeconds(10));
    }
    catch (RpcException ex)
    {
        Console.Error.WriteLine($"The broker refused the first request ({ex.StatusCode}: {ex.Status.Detail}); nothing measured.");
        return 1;
    }

    // JIT and tiered compilation settle on both servers before any level is measured.
    Console.WriteLine("Warming up both servers until the JIT is quiet...");
    // No more warm-up callers than there are agents (a run of --concurrency 1 has one).
    var warmCallers = Math.Min(16, maxCallers);
    foreach (var (name, call) in new[] { ("issuance", (Func<int, Func<DateTime, Task>>)Issue), ("ceiling", Sign), ("issuance, 1 caller", Issue) })
    {
        var (took, settled, methods) = await JitSettle.RunAsync(name.EndsWith("1 caller", StringComparison.Ordinal) ? 1 : warmCallers, call);
        Console.WriteLine($"  {name}: {(settled ? "JIT quiet" : "JIT still compiling")} after {took.TotalSeconds:F0} s ({methods:N0} methods compiled)");
    }

    var rows = new List<(LevelResult Issuance, LevelResult Ceiling)>();
    var stages = new List<(int Concurrency, IReadOnlyList<(string Stage, double P50, double P99, double Mean)> Stages)>();
    var loadBefore = Report.LoadAverage();
    var reused = 0L;
    foreach (var concurrency in options.Concurrency)
    {
        var warmup = TimeSpan.FromSeconds(options.Warmup);
        var window = TimeSpan.FromSeconds(options.Seconds);
        Console.Write($"{concurrency,3} callers: issuance...");
        cold?.Reset();
        var issuance = await LoadRunner.RunAsync(concurrency, warmup, window, Issue, RedisCpuSeconds, breakdown);
        reused = Math.Max(reused, cold?.Reused ?? 0);
        if (breakdown is not null)
        {
            stages.Add((concurrency, breakdown.Summary()));
        }

        Console.Write($" {issuance.PerSecond:F0}/s; ceiling...");
        cold?.Reset();
        var bare = await LoadRunner.RunAsync(concurrency, warmup, window, Sign);
        reused = Math.Max(reused, cold?.Reused ?? 0);
        Console.WriteLine($" {bare.PerSecond:F0}/s");
        rows.Add((issuance, bare));
    }

    var report = Report.Markdown(options, ablations, rows, stages, loadBefore, Report.LoadAverage(), cold is null ? null : (cold.Count, reused));
    Console.WriteLine();
    Console.WriteLine(report);
    Directory.CreateDirectory(Path.GetDirectoryName(outPath)!);
    await File.WriteAllTextAsync(outPath, report);
    Console.WriteLine($"Written to {outPath}");
    return 0;
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

static string RepoRoot()
{
    for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
    {
        if (File.Exists(Path.Combine(dir.FullName, "Broker.sln")))
        {
            return dir.FullName;
        }
    }

    return Environment.CurrentDirectory;
}

internal sealed record BenchOptions(int Seconds, int Warmup, IReadOnlyList<int> Concurrency, bool NoAudit, bool NoRedis, bool NoProofCache, bool Breakdown, int? MinThreads, string? OutPath, int? Proofs, bool RepeatFromMemory = false)
{
    public static BenchOptions Parse(string[] args)
    {
        var seconds = 10;
        var warmup = 2;
        IReadOnlyList<int> concurrency = [1, 16, 64];
        bool noAudit = false, noRedis = false, noProofCache = false, breakdown = false, fromMemory = false;
        int? minThreads = null, proofs = null;
        string? outPath = null;
        for (var i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            switch (args[i])
            {
                case "--seconds": seconds = Bounded(Value(), 1, 120, "--seconds"); break;
                case "--warmup": warmup = Bounded(Value(), 0, 30, "--warmup"); break;
                case "--concurrency": concurrency = Value().Split(',', StringSplitOptions.RemoveEmptyEntries).Select(v => Bounded(v, 1, 512, "--concurrency")).ToArray(); break;
                case "--no-audit": noAudit = true; break;
                case "--no-redis": noRedis = true; break;
                case "--no-proof-cache": noProofCache = true; break;
                case "--breakdown": breakdown = true; break;
                case "--repeat-from-memory": fromMemory = true; break;
                case "--min-threads": minThreads = Bounded(Value(), 1, 1024, "--min-threads"); break;
                case "--out": outPath = Path.GetFullPath(Value()); break;
                case "--proofs": proofs = Bounded(Value(), 1_000, 2_000_000, "--proofs"); break;
                default: throw new ArgumentException($"Unknown option {args[i]}; see --help.");
            }
        }

        if (proofs is not null && !noProofCache)
        {
            throw new ArgumentException("--proofs applies to the cold path only; add --no-proof-cache.");
        }

        return new BenchOptions(seconds, warmup, concurrency.Count == 0 ? [1, 16, 64] : concurrency, noAudit, noRedis, noProofCache, breakdown, minThreads, outPath, proofs, fromMemory);
    }

    private static int Bounded(string text, int min, int max, string name) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new ArgumentException($"{name} must be a whole number from {min} to {max}.");
}

internal static class Report
{
    /// <summary>1/5/15-minute load average: other work on a 2-core box moves every number.</summary>
    public static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "n/a";
        }
    }

    public static string Markdown(
        BenchOptions options,
        Ablations ablations,
        IReadOnlyList<(LevelResult Issuance, LevelResult Ceiling)> rows,
        IReadOnlyList<(int Concurrency, IReadOnlyList<(string Stage, double P50, double P99, double Mean)> Stages)> stages,
        string loadBefore,
        string loadAfter,
        (int Minted, long MostReusedInARun)? coldProofs = null)
    {
        static string F(double v, string format) => double.IsNaN(v) ? "–" : v.ToString(format, CultureInfo.InvariantCulture);
        var sb = new StringBuilder();
        var cold = coldProofs is not null;
        var (system, target) = cold ? ("cold-path issuance vs. bare verify-ES256 + sign-ES256 ceiling", 0.6) : ("IssueCredential vs. bare ES256-sign ceiling", 0.6);
        sb.AppendLine(CultureInfo.InvariantCulture, $"## {char.ToUpperInvariant(system[0])}{system[1..]} ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC)");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"{Environment.ProcessorCount} cores, .NET {Environment.Version}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}; " +
                                                    $"{options.Seconds} s measured per level after {options.Warmup} s warm-up; client and servers share the machine. Ablations: {ablations}.{(options.RepeatFromMemory ? " `Broker:Issuance:RepeatFromMemory` on (repeat issuances decided from node memory)." : "")}" +
                                                    $"{(options.MinThreads is { } t ? $" Thread pool minimum {t}." : "")} Load average before/after: {loadBefore} / {loadAfter}.");
        if (coldProofs is { } proofs)
        {
            sb.AppendLine();
            sb.AppendLine(Channels.Invariant(
                $"Cold path: every call presents a JWT-SVID not seen before (own jti; {proofs.Minted:N0} minted before the run, handed out in order, restarted for each run), and the node keeps no validated proofs; the ceiling verifies each JWT-SVID's signature with a cached key and then signs. ") +
                (proofs.MostReusedInARun == 0 ? "No call reused a proof." : Channels.Invariant($"The busiest run needed more proofs than were minted: {proofs.MostReusedInARun:N0} calls presented a proof already used in that run (still fully verified: nothing is cached).")));
        }

        sb.AppendLine();
        sb.AppendLine("| callers | issuance req/s | p50 ms | p99 ms | max ms | ceiling req/s | ceiling p50 ms | ceiling p99 ms | issuance / ceiling |");
        sb.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var (i, c) in rows)
        {
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {i.Concurrency} | {F(i.PerSecond, "F0")} | {F(i.P50Ms, "F2")} | {F(i.P99Ms, "F2")} | {F(i.MaxMs, "F1")} | {F(c.PerSecond, "F0")} | {F(c.P50Ms, "F2")} | {F(c.P99Ms, "F2")} | {F(100 * i.PerSecond / c.PerSecond, "F0")}% |");
        }

        sb.AppendLine();
        sb.AppendLine(cold
            ? "Target (stated, not asserted): cold-path issuance ≥ 60% of the verify + sign ceiling."
            : Channels.Invariant($"Targets (stated, not asserted): issuance ≥ {target:P0} of the ceiling at 16 and 64 callers; p99 ≤ 5 ms at 16 callers."));
        var at16 = rows.FirstOrDefault(r => r.Issuance.Concurrency == 16);
        if (cold && rows.Count > 0)
        {
            var misses = rows.Where(r => r.Issuance.PerSecond < target * r.Ceiling.PerSecond).Select(r => r.Issuance.Concurrency).ToArray();
            sb.AppendLine(Channels.Invariant($"This run: {string.Join(", ", rows.Select(r => Channels.Invariant($"{100 * r.Issuance.PerSecond / r.Ceiling.PerSecond:F0}% at {r.Issuance.Concurrency}")))} callers; ") +
                          (misses.Length == 0 ? "meets the target at every level." : $"misses it at {string.Join(", ", misses)} callers."));
        }
        else if (at16.Issuance is not null)
        {
            var ratio = at16.Issuance.PerSecond / at16.Ceiling.PerSecond;
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"At 16 callers this run: {ratio:P0} of the ceiling ({(ratio >= target ? "meets" : "misses")} the {target:P0} target), p99 {at16.Issuance.P99Ms:F2} ms ({(at16.Issuance.P99Ms <= 5 ? "meets" : "misses")} the 5 ms target).");
        }

        sb.AppendLine();
        sb.AppendLine("Where the CPU went (per completed call; the process holds client, broker and ceiling server, Redis is its own process):");
        sb.AppendLine();
        sb.AppendLine("| callers | system | errors | process CPU µs/call | redis CPU µs/call | allocated KiB/call | GC gen0/1/2 |");
        sb.AppendLine("|---:|---|---:|---:|---:|---:|---|");
        foreach (var (i, c) in rows)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {i.Concurrency} | issuance | {i.Errors} | {F(i.ProcessCpuUsPerCall, "F0")} | {F(i.ExternalCpuUsPerCall, "F0")} | {F(i.AllocatedBytesPerCall / 1024, "F1")} | {i.Gen0}/{i.Gen1}/{i.Gen2} |");
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {c.Concurrency} | ceiling | {c.Errors} | {F(c.ProcessCpuUsPerCall, "F0")} | – | {F(c.AllocatedBytesPerCall / 1024, "F1")} | {c.Gen0}/{c.Gen1}/{c.Gen2} |");
        }

        sb.AppendLine();
        sb.AppendLine("Allocated KiB/call is the whole process's managed allocation over the window divided by the calls completed: client, server and, for issuance, everything the node does per token.");

        if (stages.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("Issuance stages timed inside the node (--breakdown):");
            sb.AppendLine();
            sb.AppendLine("| callers | stage | p50 ms | p99 ms | mean ms |");
            sb.AppendLine("|---:|---|---:|---:|---:|");
            foreach (var (concurrency, list) in stages)
            {
                foreach (var (stage, p50, p99, mean) in list)
                {
                    sb.AppendLine(CultureInfo.InvariantCulture, $"| {concurrency} | {stage} | {p50:F2} | {p99:F2} | {mean:F2} |");
                }
            }
        }

        var firstError = rows.Select(r => r.Issuance.FirstError ?? r.Ceiling.FirstError).FirstOrDefault(e => e is not null);
        if (firstError is not null)
        {
            sb.AppendLine();
            sb.AppendLine(CultureInfo.InvariantCulture, $"First error seen: {firstError}");
        }

        return sb.ToString();
    }
}
