using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Broker.Core.Audit;
using Microsoft.Extensions.Logging.Abstractions;

namespace Broker.Benchmarks;

/// <summary>
/// How fast the audit log is written (group commit, 64 concurrent callers) and verified
/// (records/s through hash chain, parsing and checkpoint signatures). Args: [records] [callers].
/// Reports numbers; never passes or fails on them.
/// </summary>
public static class AuditVerifyBenchmark
{
    public static async Task<string> RunAsync(string[] args)
    {
        var records = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 500_000;
        var callers = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 64;
        var directory = Directory.CreateTempSubdirectory("broker-audit-bench-").FullName;
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        try
        {
            var options = new FileAuditOptions { Directory = directory, NodeId = "bench", CheckpointKey = key, SegmentMaxBytes = 16L * 1024 * 1024 };
            var write = Stopwatch.StartNew();
            await using (var sink = new FileAuditSink(options, TimeProvider.System, NullLogger<FileAuditSink>.Instance))
            {
                var next = -1;
                await Task.WhenAll(Enumerable.Range(0, callers).Select(_ => Task.Run(async () =>
                {
                    int i;
                    while ((i = Interlocked.Increment(ref next)) < records)
                    {
                        await sink.AppendAsync(Event(i), CancellationToken.None);
                    }
                })));
            }

            write.Stop();
            var bytes = AuditFiles.All(directory).Sum(s => new FileInfo(s.Path).Length);
            var segments = AuditFiles.All(directory).Count;

            // Warm up once (page cache, JIT), then take the best of three.
            _ = AuditVerifier.Verify([directory], key);
            var best = TimeSpan.MaxValue;
            AuditVerifyResult? result = null;
            for (var run = 0; run < 3; run++)
            {
                var timer = Stopwatch.StartNew();
                result = AuditVerifier.Verify([directory], key);
                timer.Stop();
                best = timer.Elapsed < best ? timer.Elapsed : best;
            }

            var report = new StringBuilder();
            report.AppendLine(CultureInfo.InvariantCulture, $"audit log: {result!.Records:N0} records, {segments} segments, {bytes / 1024.0 / 1024.0:F1} MiB ({bytes / Math.Max(1, result.Records)} bytes/record)");
            report.AppendLine(CultureInfo.InvariantCulture, $"write:  {records / write.Elapsed.TotalSeconds:N0} records/s durable with {callers} callers (group commit, fsync per batch)");
            report.AppendLine(CultureInfo.InvariantCulture, $"verify: {result.Records / best.TotalSeconds:N0} records/s ({bytes / best.TotalSeconds / 1024 / 1024:F0} MiB/s), {result.Checkpoints} checkpoints, verdict {(result.Ok ? "OK" : result.Problem!.ToString())}");
            report.AppendLine(CultureInfo.InvariantCulture, $"cpus: {Environment.ProcessorCount}; load average: {LoadAverage()}");
            return report.ToString();
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    // A typical credential.issued record (~450 bytes written).
    private static AuditEvent Event(int i) => new()
    {
        EventId = AuditEventTypes.CredentialIssued.Id,
        Type = AuditEventTypes.CredentialIssued.Name,
        Time = DateTimeOffset.UtcNow,
        CorrelationId = Guid.NewGuid().ToString("N"),
        PolicyDigest = "sha256:af2fd4dbe8fbd37732940e677849afcc5d29d969be4265d2954e56a7d5e25a76",
        Outcome = AuditOutcomes.Success,
        Subject = "spiffe://example.org/agents/planner",
        AttestationKind = "JwtSvid",
        TrustSource = "example.org",
        TaskId = "task-" + (i % 1000).ToString(CultureInfo.InvariantCulture),
        Phase = "planning",
        TokenId = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16)),
        Scopes = ["repo:read"],
        Audience = "https://api.example.org",
        ExpiresAt = DateTimeOffset.UtcNow.AddMinutes(5),
        Peer = "ipv4:127.0.0.1:54198",
    };

    private static string LoadAverage()
    {
        try
        {
            return File.ReadAllText("/proc/loadavg").Split(' ')[0];
        }
        catch (IOException)
        {
            return "n/a";
        }
    }
}
