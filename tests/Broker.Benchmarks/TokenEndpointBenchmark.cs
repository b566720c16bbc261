using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime;
using System.Text;
using System.Text.Json;
using Broker.Testing;
using Broker.V1;

namespace Broker.Benchmarks;

/// <summary>
/// Broker's OAuth token endpoint against OpenIddict's, in one process tree and one run, driven by
/// one HTTP client harness at the same concurrency levels, with Broker's gRPC issuance beside
/// them. Broker: the jwt-bearer grant with a JWT-SVID reused per agent, full production path
/// (attestation from the validated-proof cache, policy, task ownership in Redis, ES256, fsync'd
/// audit record). OpenIddict: client_credentials with a client secret, ES256 JWT with the same
/// claims, no store (<see cref="OpenIddictPeer"/>). Reports figures only; target: Broker ≥ 1.5×.
/// </summary>
internal static class TokenEndpointBenchmark
{
    private const string JwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer";

    public static async Task<string> RunAsync(string[] args)
    {
        var seconds = Option(args, "--seconds", 10);
        var warmupSeconds = Option(args, "--warmup", 2);
        var levels = args.SkipWhile(a => a != "--concurrency").Skip(1).FirstOrDefault()?.Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture)).ToArray() ?? [1, 16, 64];
        var work = Directory.CreateTempSubdirectory("broker-bench-oauth-").FullName;
        try
        {
            return await RunInAsync(work, seconds, warmupSeconds, levels);
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

    private static async Task<string> RunInAsync(string work, int seconds, int warmupSeconds, int[] levels)
    {
        await using var redis = await RedisServer.StartAsync();
        using var trust = new TestTrustDomain("example.org");
        var jwks = trust.WriteJwksFile();
        await using var broker = await BenchmarkBroker.StartAsync(work, jwks, redis.Configuration, new Ablations(false, false, false), null);
        await using var peer = await OpenIddictPeer.StartAsync();
        using var channel = broker.CreateChannel();
        var credentials = new CredentialService.CredentialServiceClient(channel);
        using var http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = Timeout.InfiniteTimeSpan, MaxConnectionsPerServer = int.MaxValue, UseCookies = false })
        {
            Timeout = LoadRunner.CallDeadline,
        };

        var brokerEndpoint = new Uri(broker.Issuer + "/oauth2/token");
        var peerEndpoint = new Uri(peer.TokenEndpoint);
        var callers = levels.Max();
        var svidLifetime = TimeSpan.FromMinutes(Math.Clamp(5 + (seconds + warmupSeconds) * levels.Length * 3 * 2 / 60.0, 5, 55));
        var svids = Enumerable.Range(0, callers).Select(i => trust.MintSvid(trust.SpiffeId($"/agents/bench-{i}"), BenchmarkBroker.Audience, DateTimeOffset.UtcNow, svidLifetime)).ToArray();
        var brokerForms = svids.Select((svid, i) => Form(
            ("grant_type", JwtBearer),
            ("assertion", svid),
            ("resource", BenchmarkBroker.ResourceAudience),
            ("scope", "repo:read tickets:read"),
            ("authorization_details", $$"""[{"type":"agent_task","task_id":"bench-task-{{i}}","phase":"planning"}]"""))).ToArray();
        var peerForms = Enumerable.Range(0, callers).Select(i => Form(
            ("grant_type", "client_credentials"),
            ("client_id", $"bench-{i}"),
            ("client_secret", OpenIddictPeer.ClientSecret),
            ("scope", "repo:read tickets:read"))).ToArray();
        var grpcRequests = svids.Select((svid, i) => new IssueCredentialRequest
        {
            TaskId = $"bench-task-grpc-{i}",
            Phase = Phase.Planning,
            Scopes = { "repo:read", "tickets:read" },
            Audience = BenchmarkBroker.ResourceAudience,
            Attestation = new AttestationProof { JwtSvid = svid },
        }).ToArray();

        Func<DateTime, Task> BrokerHttp(int i) => _ => PostAsync(http, brokerEndpoint, brokerForms[i]);
        Func<DateTime, Task> Peer(int i) => _ => PostAsync(http, peerEndpoint, peerForms[i]);
        Func<DateTime, Task> BrokerGrpc(int i) => async deadline => await credentials.IssueCredentialAsync(grpcRequests[i], deadline: deadline);

        // Both must answer with an ES256 JWT before anything is measured.
        var brokerAlg = Algorithm(await PostAsync(http, brokerEndpoint, brokerForms[0]));
        var peerAlg = Algorithm(await PostAsync(http, peerEndpoint, peerForms[0]));
        if (brokerAlg != "ES256" || peerAlg != "ES256")
        {
            throw new InvalidOperationException($"Expected ES256 access tokens from both, got Broker {brokerAlg} and OpenIddict {peerAlg}.");
        }

        var warmCallers = Math.Min(16, callers);
        foreach (var call in new[] { BrokerHttp, Peer, BrokerGrpc, BrokerHttp, Peer })
        {
            await JitSettle.RunAsync(warmCallers, call);
        }

        var loadBefore = Report.LoadAverage();
        var rows = new List<(LevelResult Broker, LevelResult Peer, LevelResult Grpc)>();
        foreach (var (concurrency, level) in levels.Select((c, n) => (c, n)))
        {
            var warmup = TimeSpan.FromSeconds(warmupSeconds);
            var window = TimeSpan.FromSeconds(seconds);
            Console.Write($"{concurrency,3} callers:");

            // The order turns each level so neither system always runs on a machine the other just heated.
            var order = new[] { "broker", "peer", "grpc" }.Skip(level % 3).Concat(new[] { "broker", "peer", "grpc" }.Take(level % 3));
            var results = new Dictionary<string, LevelResult>();
            foreach (var system in order)
            {
                results[system] = await LoadRunner.RunAsync(concurrency, warmup, window, system switch { "broker" => BrokerHttp, "peer" => Peer, _ => BrokerGrpc });
                Console.Write($" {system} {results[system].PerSecond:F0}/s");
            }

            Console.WriteLine();
            rows.Add((results["broker"], results["peer"], results["grpc"]));
        }

        return Markdown(rows, seconds, warmupSeconds, loadBefore, Report.LoadAverage());
    }

    private static string Markdown(List<(LevelResult Broker, LevelResult Peer, LevelResult Grpc)> rows, int seconds, int warmup, string loadBefore, string loadAfter)
    {
        var md = new StringBuilder();
        md.AppendLine("## Token endpoint: Broker vs OpenIddict 7.8 (and Broker's gRPC path)");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"{Environment.ProcessorCount} cores, .NET {Environment.Version}, server GC {GCSettings.IsServerGC}; {seconds} s window after {warmup} s warm-up per system and level; one HTTP/1.1 client harness for both endpoints (plain HTTP on loopback); load average {loadBefore} before, {loadAfter} after.");
        md.AppendLine();
        md.AppendLine("| callers | Broker /oauth2/token req/s | p50 / p99 ms | CPU µs/call | OpenIddict /connect/token req/s | p50 / p99 ms | CPU µs/call | Broker / OpenIddict | Broker gRPC req/s | p50 / p99 ms | KiB/call Broker / OpenIddict | errors |");
        md.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var (b, p, g) in rows)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| {b.Concurrency} | {b.PerSecond:F0} | {b.P50Ms:F2} / {b.P99Ms:F2} | {b.ProcessCpuUsPerCall:F0} | {p.PerSecond:F0} | {p.P50Ms:F2} / {p.P99Ms:F2} | {p.ProcessCpuUsPerCall:F0} | {b.PerSecond / p.PerSecond:F2}× | {g.PerSecond:F0} | {g.P50Ms:F2} / {g.P99Ms:F2} | {b.AllocatedBytesPerCall / 1024:F1} / {p.AllocatedBytesPerCall / 1024:F1} | {b.Errors + p.Errors + g.Errors} |");
        }

        md.AppendLine();
        md.AppendLine("Per Broker token: JWT-SVID checked (validated-proof cache), policy decision, task ownership and phase in Redis (`appendfsync always`), ES256 signature, one fsync'd audit record. Per OpenIddict token: client secret compare, ES256 signature, nothing stored. CPU µs/call is the whole process's, both servers and the load harness.");
        var firstError = rows.SelectMany(r => new[] { r.Broker, r.Peer, r.Grpc }).Select(r => r.FirstError).FirstOrDefault(e => e is not null);
        if (firstError is not null)
        {
            md.AppendLine();
            md.AppendLine(CultureInfo.InvariantCulture, $"First error: {firstError}");
        }

        return md.ToString();
    }

    private static byte[] Form(params (string Name, string Value)[] fields) =>
        Encoding.ASCII.GetBytes(string.Join('&', fields.Select(f => Uri.EscapeDataString(f.Name) + "=" + Uri.EscapeDataString(f.Value))));

    private static async Task<string> PostAsync(HttpClient http, Uri endpoint, byte[] form)
    {
        using var content = new ByteArrayContent(form);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-www-form-urlencoded");
        using var response = await http.PostAsync(endpoint, content);
        var body = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new HttpRequestException($"{endpoint.AbsolutePath} answered {(int)response.StatusCode}: {body[..Math.Min(body.Length, 300)]}");
        }

        return body;
    }

    private static string? Algorithm(string tokenResponse)
    {
        using var json = JsonDocument.Parse(tokenResponse);
        var token = json.RootElement.GetProperty("access_token").GetString()!;
        var header = Encoding.UTF8.GetString(System.Buffers.Text.Base64Url.DecodeFromChars(token.AsSpan(0, token.IndexOf('.'))));
        using var parsed = JsonDocument.Parse(header);
        return parsed.RootElement.GetProperty("alg").GetString();
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var at = Array.IndexOf(args, name);
        return at >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
