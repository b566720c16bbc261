using System.Diagnostics;
using System.Globalization;
using System.Text;
using Broker.Core.Revocation;
using Broker.ResourceServer;
using Broker.Revocation;
using Broker.Testing;
using Broker.V1;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Broker.Benchmarks;

/// <summary>
/// The risk gate's cost and reach, in one run on one Redis: issuance throughput on a node with
/// the gate on vs. one with it off (alternating windows), and the time from a critical signal's
/// acknowledgement to refusal at a resource server using the SDK.
/// </summary>
internal static class RiskBenchmark
{
    public static async Task<string> RunAsync(string[] args)
    {
        var callers = 16;
        var signals = args.Length > 1 && args[0] == "--signals" ? int.Parse(args[1], CultureInfo.InvariantCulture) : 300;
        var window = TimeSpan.FromSeconds(5);
        var work = Directory.CreateTempSubdirectory("broker-risk-").FullName;
        await using var redis = await RedisServer.StartAsync();
        using var trust = new TestTrustDomain("example.org");
        var jwks = trust.WriteJwksFile();
        var none = new Ablations(false, false, false);
        await using var gated = await BenchmarkBroker.StartAsync(work, jwks, redis.Configuration, none, null, node: "gate-on", riskGate: true);
        await using var open = await BenchmarkBroker.StartAsync(work, jwks, redis.Configuration, none, null, issuer: gated.Issuer, node: "gate-off");
        using var gatedChannel = gated.CreateChannel();
        using var openChannel = open.CreateChannel();
        var gatedClient = new CredentialService.CredentialServiceClient(gatedChannel);
        var openClient = new CredentialService.CredentialServiceClient(openChannel);

        IssueCredentialRequest Request(string agent, string task) => new()
        {
            TaskId = task,
            Phase = Phase.Planning,
            Scopes = { "repo:read" },
            Audience = BenchmarkBroker.ResourceAudience,
            Attestation = new AttestationProof { JwtSvid = trust.MintSvid(agent, BenchmarkBroker.Audience, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(15)) },
        };

        var requests = Enumerable.Range(0, callers).Select(i => Request(trust.SpiffeId($"/agents/gate-{i}"), $"gate-{i}")).ToArray();
        Func<int, Func<DateTime, Task>> Against(CredentialService.CredentialServiceClient client) =>
            i => async deadline => await client.IssueCredentialAsync(requests[i], deadline: deadline);
        var on = new List<LevelResult>();
        var off = new List<LevelResult>();
        // Alternate which node goes first, so neither always runs on a warmer (or busier) machine.
        for (var round = 0; round < 4; round++)
        {
            if (round % 2 == 0)
            {
                on.Add(await LoadRunner.RunAsync(callers, TimeSpan.FromSeconds(1), window, Against(gatedClient)));
                off.Add(await LoadRunner.RunAsync(callers, TimeSpan.FromSeconds(1), window, Against(openClient)));
            }
            else
            {
                off.Add(await LoadRunner.RunAsync(callers, TimeSpan.FromSeconds(1), window, Against(openClient)));
                on.Add(await LoadRunner.RunAsync(callers, TimeSpan.FromSeconds(1), window, Against(gatedClient)));
            }
        }

        // Signal → refusal: an SDK resource server watches the gated node; each round a fresh agent
        // holds a token, the runtime service reports it critical, and the clock runs from the
        // signal's acknowledgement until the SDK refuses that token.
        using var sdk = new BrokerRevocationClient(
            Options.Create(new BrokerJwtBearerOptions
            {
                Authority = gated.Issuer,
                Audience = BenchmarkBroker.ResourceAudience,
                RevocationAddress = gated.GrpcAddress,
                RevocationTokenProvider = _ => ValueTask.FromResult(gated.ResourceServerToken()),
                RequireHttpsMetadata = false,
            }),
            TimeProvider.System,
            NullLogger<BrokerRevocationClient>.Instance);
        await sdk.StartAsync(CancellationToken.None);
        var ready = DateTime.UtcNow.AddSeconds(10);
        while (!sdk.IsCurrent && DateTime.UtcNow < ready)
        {
            await Task.Delay(10);
        }

        var signalClient = new SignalService.SignalServiceClient(gatedChannel);
        var source = new AttestationProof { JwtSvid = trust.MintSvid(BenchmarkBroker.RiskSource, BenchmarkBroker.Audience, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(15)) };
        var latencies = new List<double>(signals);
        for (var i = 0; i < signals; i++)
        {
            var agent = trust.SpiffeId($"/agents/contained-{i}");
            var issued = await gatedClient.IssueCredentialAsync(Request(agent, $"contained-{i}"));
            var facts = new TokenFacts(issued.TokenId, agent, $"contained-{i}", "planning", DateTimeOffset.FromUnixTimeSeconds(IssuedAt(issued.AccessToken)));
            var now = DateTimeOffset.UtcNow;
            await signalClient.ReportSignalAsync(new ReportSignalRequest
            {
                Attestation = source,
                SignalId = $"bench-{i}",
                Agent = agent,
                Level = RiskLevel.Critical,
                Score = 99,
                Detector = "tool_chaining",
                EvidenceRef = "bench://evidence/" + i,
                ObservedAt = Timestamp.FromDateTimeOffset(now),
                ValidUntil = Timestamp.FromDateTimeOffset(now.AddMinutes(5)),
            });
            var acknowledged = Stopwatch.GetTimestamp();
            var spin = new SpinWait();
            double? refused = null;
            while (refused is null && Stopwatch.GetElapsedTime(acknowledged) < TimeSpan.FromSeconds(5))
            {
                if (sdk.Index.IsRevoked(facts, out _))
                {
                    refused = Stopwatch.GetElapsedTime(acknowledged).TotalMilliseconds;
                }

                spin.SpinOnce(sleep1Threshold: -1);
            }

            latencies.Add(refused ?? double.PositiveInfinity);
        }

        await sdk.StopAsync(CancellationToken.None);
        double Rate(List<LevelResult> results) => results.Sum(r => r.Completed) / results.Sum(r => r.Window.TotalSeconds);
        var sorted = latencies.Where(double.IsFinite).Order().ToArray();
        double At(double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"Risk gate: {callers} callers, 4 alternating {window.TotalSeconds:F0} s windows per node (order swapped each round); {signals} critical signals; load average {Report.LoadAverage()}");
        report.AppendLine();
        report.AppendLine("| node | issuance req/s |");
        report.AppendLine("|---|---:|");
        report.AppendLine(CultureInfo.InvariantCulture, $"| gate on (risk view per issuance, from the node's copy unless a change was announced) | {Rate(on):F0} |");
        report.AppendLine(CultureInfo.InvariantCulture, $"| gate off | {Rate(off):F0} |");
        report.AppendLine();
        report.AppendLine(CultureInfo.InvariantCulture, $"The gate costs {1 - (Rate(on) / Rate(off)):P0} of issuance throughput (target, stated not asserted: ≤ 10%).");
        report.AppendLine();
        report.AppendLine("| critical signal acknowledged → refused by an SDK resource server | p50 ms | p99 ms | max ms | missed (>5 s) |");
        report.AppendLine("|---|---:|---:|---:|---:|");
        report.AppendLine(CultureInfo.InvariantCulture, $"| | {At(0.5):F2} | {At(0.99):F2} | {(sorted.Length == 0 ? double.NaN : sorted[^1]):F2} | {latencies.Count - sorted.Length} |");
        report.AppendLine();
        report.AppendLine("Target (stated, not asserted): p99 ≤ 15 ms on loopback.");
        return report.ToString();
    }

    private static long IssuedAt(string token)
    {
        var payload = token.Split('.')[1];
        using var json = System.Text.Json.JsonDocument.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(payload));
        return json.RootElement.GetProperty("iat").GetInt64();
    }
}
