using System.Globalization;
using System.Text;
using Broker.Testing;
using Broker.V1;

namespace Broker.Benchmarks;

/// <summary>
/// What the durable, hash-chained audit log costs issuance: two nodes in one run on one Redis,
/// identical but for the audit sink (the fsync'd file vs. a no-op), measured in alternating
/// windows so drift on a shared machine hits both alike.
/// </summary>
internal static class AuditCostBenchmark
{
    public static async Task<string> RunAsync(string[] args)
    {
        var callers = args.Length > 1 && args[0] == "--callers" ? int.Parse(args[1], CultureInfo.InvariantCulture) : 64;
        var window = TimeSpan.FromSeconds(5);
        var rounds = 3;
        var work = Directory.CreateTempSubdirectory("broker-audit-cost-").FullName;
        await using var redis = await RedisServer.StartAsync();
        using var trust = new TestTrustDomain("example.org");
        var jwks = trust.WriteJwksFile();
        await using var durable = await BenchmarkBroker.StartAsync(work, jwks, redis.Configuration, new Ablations(false, false, false), null, node: "durable");
        await using var noAudit = await BenchmarkBroker.StartAsync(work, jwks, redis.Configuration, new Ablations(true, false, false), null, issuer: durable.Issuer, node: "no-audit");
        using var durableChannel = durable.CreateChannel();
        using var noAuditChannel = noAudit.CreateChannel();
        var durableClient = new CredentialService.CredentialServiceClient(durableChannel);
        var noAuditClient = new CredentialService.CredentialServiceClient(noAuditChannel);

        var requests = Enumerable.Range(0, callers).Select(i => new IssueCredentialRequest
        {
            TaskId = $"audit-cost-{i}",
            Phase = Phase.Planning,
            Scopes = { "repo:read" },
            Audience = BenchmarkBroker.ResourceAudience,
            Attestation = new AttestationProof
            {
                JwtSvid = trust.MintSvid(trust.SpiffeId($"/agents/cost-{i}"), BenchmarkBroker.Audience, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(10)),
            },
        }).ToArray();
        Func<int, Func<DateTime, Task>> Against(CredentialService.CredentialServiceClient client) =>
            i => async deadline => await client.IssueCredentialAsync(requests[i], deadline: deadline);

        var withAudit = new List<LevelResult>();
        var without = new List<LevelResult>();
        for (var round = 0; round < rounds; round++)
        {
            withAudit.Add(await LoadRunner.RunAsync(callers, TimeSpan.FromSeconds(1), window, Against(durableClient)));
            without.Add(await LoadRunner.RunAsync(callers, TimeSpan.FromSeconds(1), window, Against(noAuditClient)));
        }

        double Rate(List<LevelResult> results) => results.Sum(r => r.Completed) / results.Sum(r => r.Window.TotalSeconds);
        var durableRate = Rate(withAudit);
        var noAuditRate = Rate(without);
        var cost = 1 - (durableRate / noAuditRate);
        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"Audit cost on issuance: {callers} callers, {rounds} alternating {window.TotalSeconds:F0} s windows per node, one run, load average {Report.LoadAverage()}");
        report.AppendLine();
        report.AppendLine("| node | issuance req/s | p99 ms (worst window) | errors |");
        report.AppendLine("|---|---:|---:|---:|");
        report.AppendLine(CultureInfo.InvariantCulture, $"| durable audit (hash-chained, fsync group commit) | {durableRate:F0} | {withAudit.Max(r => r.P99Ms):F2} | {withAudit.Sum(r => r.Errors)} |");
        report.AppendLine(CultureInfo.InvariantCulture, $"| audit disabled (no-op sink) | {noAuditRate:F0} | {without.Max(r => r.P99Ms):F2} | {without.Sum(r => r.Errors)} |");
        report.AppendLine();
        report.AppendLine(CultureInfo.InvariantCulture, $"Durable audit costs {cost:P0} of issuance throughput (target, stated not asserted: ≤ 15%).");
        return report.ToString();
    }
}
