using System.Diagnostics;
using System.Globalization;
using System.Text;
using Broker.Core.Issuance;
using Broker.Core.Revocation;
using Broker.ResourceServer;
using Broker.Revocation;
using Broker.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Broker.Benchmarks;

/// <summary>
/// Time from a revocation's OK at node A to refusal at node B (its revocation index) and at a
/// resource server's SDK subscribed to node B, over real Redis and real gRPC on loopback.
/// </summary>
internal static class PropagationBenchmark
{
    public static async Task<string> RunAsync(string[] args)
    {
        var count = args.Length > 1 && args[0] == "--revocations" ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1000;
        var work = Directory.CreateTempSubdirectory("broker-propagation-").FullName;
        await using var redis = await RedisServer.StartAsync();
        using var trust = new TestTrustDomain("example.org");
        var jwks = trust.WriteJwksFile();
        var none = new Ablations(false, false, false);
        await using var nodeA = await BenchmarkBroker.StartAsync(work, jwks, redis.Configuration, none, null, node: "a");
        await using var nodeB = await BenchmarkBroker.StartAsync(work, jwks, redis.Configuration, none, null, issuer: nodeA.Issuer, node: "b");

        var sdkOptions = Options.Create(new BrokerJwtBearerOptions
        {
            Authority = nodeA.Issuer,
            Audience = "https://api.example.org",
            RevocationAddress = nodeB.GrpcAddress,
            RevocationTokenProvider = _ => ValueTask.FromResult(nodeB.ResourceServerToken()),
            RequireHttpsMetadata = false,
        });
        using var sdk = new BrokerRevocationClient(sdkOptions, TimeProvider.System, NullLogger<BrokerRevocationClient>.Instance);
        await sdk.StartAsync(CancellationToken.None);

        var revoker = (Revoker)nodeA.Services.GetService(typeof(Revoker))!;
        var feedB = (RevocationFeed)nodeB.Services.GetService(typeof(RevocationFeed))!;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!sdk.IsCurrent && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        var toNode = new List<double>(count);
        var toSdk = new List<double>(count);
        var context = new RequestContext("bench", null);
        for (var i = 0; i < count; i++)
        {
            var tokenId = TokenMinterIds.New();
            var facts = new TokenFacts(tokenId, "spiffe://example.org/agents/x", "t", "planning", DateTimeOffset.UtcNow);
            await revoker.RevokeAsync([RevocationSelector.ForToken(tokenId)], "operator:bench", "propagation benchmark", context, CancellationToken.None);
            var ok = Stopwatch.GetTimestamp();
            double? node = null, client = null;
            var spin = new SpinWait();
            while ((node is null || client is null) && Stopwatch.GetElapsedTime(ok) < TimeSpan.FromSeconds(5))
            {
                if (node is null && feedB.Index.IsRevoked(facts, out _))
                {
                    node = Stopwatch.GetElapsedTime(ok).TotalMilliseconds;
                }

                if (client is null && sdk.Index.IsRevoked(facts, out _))
                {
                    client = Stopwatch.GetElapsedTime(ok).TotalMilliseconds;
                }

                spin.SpinOnce(sleep1Threshold: -1);
            }

            toNode.Add(node ?? double.PositiveInfinity);
            toSdk.Add(client ?? double.PositiveInfinity);
        }

        await sdk.StopAsync(CancellationToken.None);
        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"Revocation propagation: {count} revocations, one at a time, loopback, {Environment.ProcessorCount} cores, load average {Report.LoadAverage()}");
        report.AppendLine();
        report.AppendLine("| from Revoke OK at node A to refusal at | p50 ms | p99 ms | max ms | missed (>5 s) |");
        report.AppendLine("|---|---:|---:|---:|---:|");
        report.AppendLine(Row("node B (its revocation index)", toNode));
        report.AppendLine(Row("resource-server SDK on node B's stream", toSdk));
        report.AppendLine();
        report.AppendLine("Target (stated, not asserted): p99 ≤ 10 ms on loopback.");
        return report.ToString();
    }

    private static string Row(string name, List<double> samples)
    {
        var sorted = samples.Where(double.IsFinite).Order().ToArray();
        var missed = samples.Count - sorted.Length;
        double At(double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
        return string.Create(CultureInfo.InvariantCulture, $"| {name} | {At(0.50):F2} | {At(0.99):F2} | {(sorted.Length == 0 ? double.NaN : sorted[^1]):F2} | {missed} |");
    }
}

/// <summary>Token ids shaped like the ones Broker mints (16 random bytes, base64url).</summary>
internal static class TokenMinterIds
{
    public static string New() => System.Buffers.Text.Base64Url.EncodeToString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
}
