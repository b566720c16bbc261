using System.Globalization;
using System.Net;
using System.Text;
using Broker.Core.Audit;
using Broker.Testing;
using Broker.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Broker.Benchmarks;

/// <summary>
/// What a flood of bad proofs from one address costs a good agent and the audit log: two nodes
/// on one Redis, identical but for the refusal budget (on, the default 30 per minute; off, every
/// refusal fsynced as before it existed). Each node is measured with the good agent alone, then
/// with flooders on 127.0.0.2 sending forged JWT-SVIDs as fast as they are answered.
/// </summary>
internal static class RefusalFloodBenchmark
{
    private static readonly IPAddress Flooder = IPAddress.Parse("127.0.0.2");

    public static async Task<string> RunAsync(string[] args)
    {
        var flooders = args.Length > 1 && args[0] == "--flooders" ? int.Parse(args[1], CultureInfo.InvariantCulture) : 16;
        const int goodCallers = 4;
        var window = TimeSpan.FromSeconds(5);
        var work = Directory.CreateTempSubdirectory("broker-refusal-flood-").FullName;
        await using var redis = await RedisServer.StartAsync();
        using var trust = new TestTrustDomain("example.org");
        using var forger = new TestTrustDomain("example.org", trust.KeyId);
        var jwks = trust.WriteJwksFile();
        var none = new Ablations(false, false, false);
        await using var limited = await BenchmarkBroker.StartAsync(work, jwks, redis.Configuration, none, null, node: "limited");
        await using var unlimited = await BenchmarkBroker.StartAsync(work, jwks, redis.Configuration, none, null, issuer: limited.Issuer, node: "unlimited",
            settings: new Dictionary<string, string?> { ["Broker:RateLimit:Enabled"] = "false" });

        var good = Enumerable.Range(0, goodCallers).Select(i => new IssueCredentialRequest
        {
            TaskId = $"flood-good-{i}",
            Phase = Phase.Planning,
            Scopes = { "repo:read" },
            Audience = BenchmarkBroker.ResourceAudience,
            Attestation = new AttestationProof { JwtSvid = trust.MintSvid(trust.SpiffeId($"/agents/good-{i}"), BenchmarkBroker.Audience, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(30)) },
        }).ToArray();
        var bad = Enumerable.Range(0, 64).Select(i => new IssueCredentialRequest
        {
            TaskId = $"flood-bad-{i}",
            Phase = Phase.Planning,
            Scopes = { "repo:read" },
            Audience = BenchmarkBroker.ResourceAudience,
            Attestation = new AttestationProof { JwtSvid = forger.MintSvid(trust.SpiffeId($"/agents/bad-{i}"), BenchmarkBroker.Audience, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(30)) },
        }).ToArray();

        var rows = new List<string>();
        foreach (var (name, node) in new[] { ("budget on (default)", limited), ("budget off (every refusal audited)", unlimited) })
        {
            using var goodChannel = node.CreateChannel();
            using var floodChannel = GrpcChannel.ForAddress(node.GrpcAddress, new GrpcChannelOptions { HttpHandler = LocalAddressHandler.Create(Flooder) });
            var goodClient = new CredentialService.CredentialServiceClient(goodChannel);
            var floodClient = new CredentialService.CredentialServiceClient(floodChannel);
            Func<int, Func<DateTime, Task>> goodCalls = i => async deadline => await goodClient.IssueCredentialAsync(good[i], deadline: deadline);

            var alone = await LoadRunner.RunAsync(goodCallers, TimeSpan.FromSeconds(1), window, goodCalls);

            using var stop = new CancellationTokenSource();
            var refused = 0L;
            var floods = Enumerable.Range(0, flooders).Select(f => Task.Run(async () =>
            {
                for (var n = f; !stop.IsCancellationRequested; n++)
                {
                    try
                    {
                        await floodClient.IssueCredentialAsync(bad[n % bad.Length], deadline: DateTime.UtcNow + LoadRunner.CallDeadline);
                    }
                    catch (RpcException)
                    {
                        Interlocked.Increment(ref refused);
                    }
                }
            })).ToArray();
            var recordsBefore = AuditReader.ReadAll([node.AuditPath]).Count;
            var refusedBefore = Interlocked.Read(ref refused);
            var flooded = await LoadRunner.RunAsync(goodCallers, TimeSpan.FromSeconds(1), window, goodCalls);
            var floodRate = (Interlocked.Read(ref refused) - refusedBefore) / flooded.Window.TotalSeconds;
            var records = AuditReader.ReadAll([node.AuditPath]).Count - recordsBefore - flooded.Completed;
            await stop.CancelAsync();
            await Task.WhenAll(floods);

            rows.Add(Channels.Invariant($"| {name} | {alone.PerSecond:F0} | {alone.P99Ms:F1} | {flooded.PerSecond:F0} | {flooded.P99Ms:F1} | {flooded.Errors} | {floodRate:F0} | {records} |"));
        }

        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"Refusal flood: {goodCallers} good callers on 127.0.0.1, {flooders} flooders on 127.0.0.2 sending forged JWT-SVIDs, {window.TotalSeconds:F0} s windows, one process on {Environment.ProcessorCount} cores (client and server share them), load average {Report.LoadAverage()}");
        report.AppendLine();
        report.AppendLine("| node | good req/s alone | p99 ms alone | good req/s under flood | p99 ms under flood | good errors | flood refusals/s | audit records for the flood (window, approx.) |");
        report.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var row in rows)
        {
            report.AppendLine(row);
        }

        report.AppendLine();
        report.AppendLine("Audit records for the flood = records written during the flooded window minus the good agent's issuance records (approximate: the window edges are not exact). With the budget on, the flood's aggregated record is written when the window (1 minute) closes, after this measurement.");
        return report.ToString();
    }
}
