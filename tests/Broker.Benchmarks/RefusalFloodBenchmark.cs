using System.Globalization;
using System.Net;
using System.Text;
using Broker.Core.Audit;
using Broker.Testing;
using Broker.V1;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.DependencyInjection;

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

        // Alternating rounds, so drift on a shared machine hits both nodes alike.
        var nodes = new[] { ("budget on (default)", limited), ("budget off (every refusal audited)", unlimited) };
        var alone = nodes.ToDictionary(n => n.Item1, _ => new List<LevelResult>());
        var flooded = nodes.ToDictionary(n => n.Item1, _ => new List<LevelResult>());
        var refusals = nodes.ToDictionary(n => n.Item1, _ => 0L);
        for (var round = 0; round < 3; round++)
        {
            // Each round swaps which node goes first, so neither always follows the other's flood.
            foreach (var (name, node) in round % 2 == 0 ? nodes : nodes.Reverse())
            {
                var (quiet, loud, refused) = await MeasureAsync(node, good, bad, flooders, window);
                alone[name].Add(quiet);
                flooded[name].Add(loud);
                refusals[name] += refused;
            }
        }

        var rows = new List<string>();
        foreach (var (name, node) in nodes)
        {
            // Everything the flood cost the log: its peer's records, the aggregated ones included.
            await node.Services.GetRequiredService<Broker.Core.Refusals.RefusalAuditor>().FlushAsync();
            var records = AuditReader.ReadAll([node.AuditPath]).Count(r => r.Event.Peer is { } peer && (peer == "127.0.0.2" || peer.StartsWith("ipv4:127.0.0.2:", StringComparison.Ordinal)));
            double Rate(List<LevelResult> results) => results.Sum(r => r.Completed) / results.Sum(r => r.Window.TotalSeconds);
            rows.Add(Channels.Invariant($"| {name} | {Rate(alone[name]):F0} | {alone[name].Max(r => r.P99Ms):F1} | {Rate(flooded[name]):F0} | {flooded[name].Max(r => r.P99Ms):F1} | {flooded[name].Sum(r => r.Errors)} | {refusals[name]} | {records} |"));
        }

        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"Refusal flood: {goodCallers} good callers on 127.0.0.1, {flooders} flooders on 127.0.0.2 sending forged JWT-SVIDs, 3 alternating rounds of {window.TotalSeconds:F0} s windows per node, one process on {Environment.ProcessorCount} cores (client and server share them), load average {Report.LoadAverage()}");
        report.AppendLine();
        report.AppendLine("| node | good req/s alone | p99 ms alone (worst window) | good req/s under flood | p99 ms under flood (worst window) | good errors | flood requests refused | audit records for the flood |");
        report.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var row in rows)
        {
            report.AppendLine(row);
        }

        report.AppendLine();
        report.AppendLine("Audit records for the flood: every record naming 127.0.0.2, after the open window's aggregated records were written. With the budget on, a forged proof past it is refused before its signature is checked; the budget bounds the log, and the flood's remaining cost is its transport and the flooders' own CPU on the shared cores.");
        return report.ToString();
    }

    /// <summary>The good agent alone, then under the flood; and how many flood requests were refused meanwhile.</summary>
    private static async Task<(LevelResult Alone, LevelResult Flooded, long Refused)> MeasureAsync(BenchmarkBroker node, IssueCredentialRequest[] good, IssueCredentialRequest[] bad, int flooders, TimeSpan window)
    {
        using var goodChannel = node.CreateChannel();
        using var floodChannel = GrpcChannel.ForAddress(node.GrpcAddress, new GrpcChannelOptions { HttpHandler = LocalAddressHandler.Create(Flooder) });
        var goodClient = new CredentialService.CredentialServiceClient(goodChannel);
        var floodClient = new CredentialService.CredentialServiceClient(floodChannel);
        Func<int, Func<DateTime, Task>> goodCalls = i => async deadline => await goodClient.IssueCredentialAsync(good[i], deadline: deadline);

        var alone = await LoadRunner.RunAsync(good.Length, TimeSpan.FromSeconds(1), window, goodCalls);

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
        var flooded = await LoadRunner.RunAsync(good.Length, TimeSpan.FromSeconds(1), window, goodCalls);
        await stop.CancelAsync();
        await Task.WhenAll(floods);
        return (alone, flooded, Interlocked.Read(ref refused));
    }
}
