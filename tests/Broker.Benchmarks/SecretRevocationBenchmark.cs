using System.Diagnostics;
using System.Globalization;
using System.Text;
using Broker.Core.Issuance;
using Broker.Core.Revocation;
using Broker.Testing;
using Broker.V1;
using Npgsql;

namespace Broker.Benchmarks;

/// <summary>
/// Time from a lease revocation's OK to the agent's open PostgreSQL session being terminated,
/// over real Redis, a real PostgreSQL and the shipped broker registration. The agent's session
/// runs <c>pg_sleep</c> when the revocation is made; the clock stops when that query fails.
/// </summary>
internal static class SecretRevocationBenchmark
{
    public static async Task<string> RunAsync(string[] args)
    {
        var count = args.Length > 1 && args[0] == "--leases" ? int.Parse(args[1], CultureInfo.InvariantCulture) : 200;
        var work = Directory.CreateTempSubdirectory("broker-secrets-bench-").FullName;
        await using var redis = await RedisServer.StartAsync();
        await using var postgres = await PostgresServer.StartAsync();
        await postgres.ExecuteAsync("postgres", "CREATE DATABASE orders");
        await postgres.ExecuteAsync("orders", "CREATE ROLE orders_reader NOLOGIN; CREATE TABLE orders (id int); GRANT SELECT ON orders TO orders_reader;");
        using var trust = new TestTrustDomain("example.org");
        var jwks = trust.WriteJwksFile();
        await using var broker = await BenchmarkBroker.StartAsync(work, jwks, redis.Configuration, new Ablations(false, false, false), null, policy: j => Policy(j, postgres));
        using var channel = broker.CreateChannel();
        var client = new CredentialService.CredentialServiceClient(channel);
        var revoker = (Revoker)broker.Services.GetService(typeof(Revoker))!;
        var context = new RequestContext("bench", null);

        var latencies = new List<double>(count);
        for (var i = 0; i < count; i++)
        {
            var issued = await client.IssueSecretAsync(new IssueSecretRequest
            {
                TaskId = $"bench-{i}",
                Phase = Phase.Planning,
                Engine = "orders-db",
                Role = "orders_reader",
                Attestation = new AttestationProof { JwtSvid = trust.MintSvid(trust.SpiffeId("/agents/bench"), BenchmarkBroker.Audience, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5)) },
            });
            var db = issued.Credential.Database;
            await using var session = new NpgsqlConnection($"Host={db.Host};Port={db.Port};Database={db.Database};Username={db.Username};Password={db.Password};Pooling=false");
            await session.OpenAsync();
            await using var sleep = new NpgsqlCommand("SELECT pg_sleep(30)", session);
            var running = sleep.ExecuteNonQueryAsync();

            await revoker.RevokeAsync([Broker.Revocation.RevocationSelector.ForToken(issued.LeaseId)], "operator:bench", "secret revocation benchmark", context, CancellationToken.None);
            var ok = Stopwatch.GetTimestamp();
            try
            {
                await running;
            }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
            {
                // Terminated: what we wait for.
            }

            latencies.Add(Stopwatch.GetElapsedTime(ok).TotalMilliseconds);
        }

        var burst = await BurstAsync(client, revoker, trust, context);

        latencies.Sort();
        double P(double q) => latencies[Math.Min(latencies.Count - 1, (int)Math.Ceiling(q * latencies.Count) - 1)];
        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"# Secret revocation: OK to PostgreSQL session terminated");
        report.AppendLine();
        report.AppendLine(CultureInfo.InvariantCulture, $"{Environment.ProcessorCount} cores, .NET {Environment.Version}, {count} leases, one node, load average {Report.LoadAverage()}");
        report.AppendLine();
        report.AppendLine("| p50 | p90 | p99 | max |");
        report.AppendLine("|---|---|---|---|");
        report.AppendLine(CultureInfo.InvariantCulture, $"| {P(0.5):F1} ms | {P(0.9):F1} ms | {P(0.99):F1} ms | {latencies[^1]:F1} ms |");
        report.AppendLine();
        report.AppendLine(CultureInfo.InvariantCulture, $"One task revocation ending {BurstLeases} leases, each with an open session: first session terminated {burst[0]:F1} ms, last {burst[^1]:F1} ms after the OK.");
        return report.ToString();
    }

    private const int BurstLeases = 40;

    // One revocation that ends many leases at once: the time to the last session is what an
    // incident responder waits for.
    private static async Task<double[]> BurstAsync(CredentialService.CredentialServiceClient client, Revoker revoker, TestTrustDomain trust, RequestContext context)
    {
        var sessions = new List<(NpgsqlConnection Session, Task Running)>();
        try
        {
            for (var i = 0; i < BurstLeases; i++)
            {
                var issued = await client.IssueSecretAsync(new IssueSecretRequest
                {
                    TaskId = "bench-burst",
                    Phase = Phase.Planning,
                    Engine = "orders-db",
                    Role = "orders_reader",
                    Attestation = new AttestationProof { JwtSvid = trust.MintSvid(trust.SpiffeId("/agents/bench"), BenchmarkBroker.Audience, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5)) },
                });
                var db = issued.Credential.Database;
                var session = new NpgsqlConnection($"Host={db.Host};Port={db.Port};Database={db.Database};Username={db.Username};Password={db.Password};Pooling=false");
                await session.OpenAsync();
                var sleep = new NpgsqlCommand("SELECT pg_sleep(30)", session);
                sessions.Add((session, sleep.ExecuteNonQueryAsync()));
            }

            await revoker.RevokeAsync([Broker.Revocation.RevocationSelector.ForTask("bench-burst")], "operator:bench", "secret revocation burst", context, CancellationToken.None);
            var ok = Stopwatch.GetTimestamp();
            var ended = await Task.WhenAll(sessions.Select(async s =>
            {
                try
                {
                    await s.Running;
                }
                catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
                {
                    // Terminated: what we wait for.
                }

                return Stopwatch.GetElapsedTime(ok).TotalMilliseconds;
            }));
            Array.Sort(ended);
            return ended;
        }
        finally
        {
            foreach (var (session, _) in sessions)
            {
                await session.DisposeAsync();
            }
        }
    }

    private static string Policy(string jwksPath, PostgresServer postgres) => $"""
        version: 1
        trust:
          spiffe:
            - trust_domain: example.org
              jwt_bundle_file: {jwksPath}
              refresh: 5m
        secret_engines:
          - name: orders-db
            type: postgres
            connection: "{postgres.ConnectionFor("orders")}"
            admin_password_file: {postgres.AdminPasswordFile}
        agents:
          - name: bench-agents
            match: spiffe://example.org/agents/*
            phases:
              planning:
                scopes: [repo:read]
                audiences: [{BenchmarkBroker.ResourceAudience}]
                max_ttl: 10m
                secrets:
                  - engine: orders-db
                    role: orders_reader
                    max_lease_ttl: 5m
        """;
}
