using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Broker.Client;
using Broker.Core.Audit;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Broker.V1;
using Grpc.Core;
using Xunit.Abstractions;

namespace Broker.Server.Tests.Failover;

/// <summary>
/// The Redis primary killed under load at two broker nodes that each run alone in their own OS
/// process, started from the built Broker.Server.dll and configured through the environment as
/// deploy/local/cluster.sh does, with the shipped runtime settings (thread-pool minimum
/// included). The test process only hosts the callers and does not raise its own thread-pool
/// minimum. Besides the guarantees <see cref="SentinelFailoverWorkload"/> checks, it measures
/// whether a node stalls while it follows the Sentinel switch: a liveness probe every 100 ms
/// to each node, and each node's own /metrics (revocation staleness, thread pool).
/// </summary>
[Collection(SentinelFailoverCollection.Name)]
public sealed class SentinelFailoverNodeProcessTests(ITestOutputHelper output)
{
    [Fact]
    public Task Primary_killed_under_load_at_nodes_in_their_own_processes_loses_no_acknowledged_revocation_and_both_recover() =>
        new NodeProcessFailoverWorkload(output).RunAsync();
}

internal sealed class NodeProcessFailoverWorkload(ITestOutputHelper output)
{
    public const string ReportTitle = "Sentinel failover report: 2 replicas, one node per process";

    private const string Audience = "spiffe://example.org/broker";
    private const string ResourceAudience = "https://api.example.org";
    private const string Prefix = "failover:";
    private const int LanesPerNode = 2;
    private const int MaxIterationsPerLane = 500;
    private static readonly TimeSpan MaxWorkload = TimeSpan.FromSeconds(45);
    private static readonly TimeSpan BeforeKill = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan AfterRecovery = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan CallDeadline = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan ProbeInterval = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan WindowSanityBound = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan AfterFailoverRetryBound = TimeSpan.FromSeconds(20);

    private readonly Stopwatch _clock = new();
    private readonly ConcurrentQueue<Call> _calls = new();
    private readonly ConcurrentQueue<Probe> _probes = new();
    private readonly ConcurrentQueue<Scrape> _scrapes = new();
    private readonly ConcurrentQueue<(double AtMs, double LagMs)> _ownLag = new();

    /// <summary>One liveness probe: when it was sent, when it was answered, whether it was.</summary>
    private sealed record Probe(int Node, double StartMs, double EndMs, bool Live);

    /// <summary>One scrape of a node's /metrics; null where the node did not export the series.</summary>
    private sealed record Scrape(int Node, double AtMs, double? Staleness, double? Current, double? PoolThreads, double? PoolQueue);

    public async Task RunAsync()
    {
        ThreadPool.GetMinThreads(out var testWorkers, out _);
        var shippedMinimum = BrokerNodeProcess.ShippedThreadPoolMinimum();
        Assert.True(BrokerNodeProcess.ServerDllOverridden || shippedMinimum is >= 32, $"Broker.Server.runtimeconfig.json sets System.Threading.ThreadPool.MinThreads {shippedMinimum?.ToString(CultureInfo.InvariantCulture) ?? "(none)"}");

        await using var redis = await SentinelCluster.StartAsync(replicas: 2);
        using var trust = new TestTrustDomain("example.org");
        await using var idp = await TestOperatorIdp.StartAsync();
        var work = Directory.CreateTempSubdirectory("broker-failover-processes-").FullName;
        var nodes = new List<BrokerNodeProcess>();
        try
        {
            var jwks = trust.WriteJwksFile();
            var policy = Path.Combine(work, "policy.yaml");
            await File.WriteAllTextAsync(policy, Policy(jwks));
            var signing = WriteKey(work, "signing.pem");
            var checkpoint = WriteKey(work, "audit-checkpoint.pem");
            var ports = Enumerable.Range(0, 4).Select(_ => RedisServer.FreePort()).ToArray();
            var issuer = $"http://127.0.0.1:{ports[1]}";
            var starts = new[] { "A", "B" }.Select((name, i) => BrokerNodeProcess.StartAsync(
                $"node-{name}",
                Path.Combine(work, name),
                new Dictionary<string, string>
                {
                    ["Broker:Issuer"] = issuer,
                    ["Broker:Audience"] = Audience,
                    ["Broker:PolicyPath"] = policy,
                    ["Broker:AuditPath"] = Path.Combine(work, name, "audit"),
                    ["Broker:NodeId"] = $"node-{name}",
                    ["Broker:Audit:CheckpointKeyPath"] = checkpoint,
                    ["Broker:Redis:Configuration"] = redis.Configuration,
                    ["Broker:Redis:KeyPrefix"] = Prefix,
                    ["Broker:Signing:Keys:0:Path"] = signing,
                    ["Broker:Operators:Authority"] = idp.Issuer,
                    ["Broker:RevocationMinReplicas"] = "1",
                    [FailoverBudget.Key] = FailoverBudget.Permits, // see SentinelFailoverWorkload
                },
                grpcPort: ports[2 * i],
                httpPort: ports[2 * i + 1],
                timeout: TimeSpan.FromSeconds(60),
                resourceServerToken: idp.ResourceServerToken)).ToList();
            foreach (var start in starts)
            {
                try
                {
                    nodes.Add(await start);
                }
                catch (Exception) when (starts.Any(s => !s.IsCompleted))
                {
                    await Task.WhenAll(starts.Select(s => s.ContinueWith(t => t.IsCompletedSuccessfully ? t.Result.DisposeAsync().AsTask() : Task.CompletedTask, TaskScheduler.Default).Unwrap()));
                    throw;
                }
            }

            await RunAgainstAsync(redis, trust, idp, nodes, testWorkers, shippedMinimum);
        }
        finally
        {
            foreach (var node in nodes)
            {
                await node.DisposeAsync();
            }

            try
            {
                Directory.Delete(work, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private async Task RunAgainstAsync(SentinelCluster redis, TestTrustDomain trust, TestOperatorIdp idp, List<BrokerNodeProcess> nodes, int testWorkers, int? shippedMinimum)
    {
        var responder = new Metadata { { "authorization", "Bearer " + idp.Token("alice", ["responder"]) } };

        // Day one: the new keyspace has no epoch; an operator restores it at one node.
        var restored = await new AdminService.AdminServiceClient(nodes[0].Channel).RestoreRevocationEpochAsync(new RestoreRevocationEpochRequest { Reason = "new cluster" }, responder, deadline: Deadline());
        var cutoff = restored.Cutoff.Selector.IssuedBefore.Time.ToDateTimeOffset();
        var wait = cutoff - DateTimeOffset.UtcNow + TimeSpan.FromMilliseconds(20);
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait);
        }

        foreach (var node in nodes)
        {
            await SentinelFailoverWorkload.EventuallyAsync(() => HealthyAsync(node), TimeSpan.FromSeconds(30), $"{node.Name} healthy on the Sentinel cluster");
        }

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        _clock.Start();
        using var stop = new CancellationTokenSource();
        var lanes = new List<Task>();
        for (var n = 0; n < nodes.Count; n++)
        {
            for (var l = 0; l < LanesPerNode; l++)
            {
                var lane = n * LanesPerNode + l;
                var home = n;
                lanes.Add(Task.Run(() => LaneAsync(trust, nodes, home, lane, responder, stop.Token)));
            }
        }

        var observers = new List<Task>();
        for (var n = 0; n < nodes.Count; n++)
        {
            var index = n;
            observers.Add(Task.Run(() => ProbeAsync(nodes[index], index, stop.Token)));
            observers.Add(Task.Run(() => ScrapeAsync(http, nodes[index], index, stop.Token)));
        }

        observers.Add(Task.Run(() => OwnLagAsync(stop.Token)));

        double killedMs = double.NaN, promotedMs = double.NaN, inSyncMs = double.NaN;
        var promotedName = "?";
        Exception? chaosError = null;
        try
        {
            await SentinelFailoverWorkload.EventuallyAsync(() => Task.FromResult(_clock.Elapsed >= BeforeKill && Enumerable.Range(0, nodes.Count).All(i => OkCount(i, CallKind.Issue) >= 20 && OkCount(i, CallKind.RevokeTask) + OkCount(i, CallKind.RevokeToken) >= 10)), TimeSpan.FromSeconds(30), "both nodes to issue and revoke before the failure");
            killedMs = _clock.Elapsed.TotalMilliseconds;
            await redis.InitialPrimary.KillAsync();
            var promoted = await redis.WaitForPromotionAsync(redis.InitialPrimary, TimeSpan.FromSeconds(30));
            promotedMs = _clock.Elapsed.TotalMilliseconds;
            promotedName = promoted.Name;
            foreach (var survivor in redis.InitialReplicas.Where(r => r != promoted))
            {
                await redis.WaitForPairInSyncAsync(promoted, survivor, TimeSpan.FromSeconds(30));
            }

            inSyncMs = _clock.Elapsed.TotalMilliseconds;
            var killed = killedMs;
            await SentinelFailoverWorkload.EventuallyAsync(() => Task.FromResult(FailoverCalls.Recovered(_calls, nodes.Count, killed) || lanes.All(l => l.IsCompleted)), TimeSpan.FromSeconds(40), "both nodes to issue and revoke after the failover", throwOnTimeout: false);
            await Task.Delay(AfterRecovery);
        }
        catch (Exception ex)
        {
            chaosError = ex;
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(lanes.Concat(observers));
            _clock.Stop();
        }

        Assert.True(chaosError is null, $"The failure could not be staged: {chaosError}\n{redis.Logs()}\n{string.Join('\n', nodes.Select(n => n.LogTail()))}");
        Assert.All(nodes, n => Assert.False(n.HasExited, $"{n.Name} exited during the failover:\n{n.LogTail()}"));

        // ---- independent verification ------------------------------------------------------
        var verify = Stopwatch.StartNew();
        foreach (var node in nodes)
        {
            await SentinelFailoverWorkload.EventuallyAsync(() => HealthyAsync(node), TimeSpan.FromSeconds(30), $"{node.Name} healthy after the failover");
        }

        var calls = _calls.ToArray();
        var violations = new List<string>();
        var lost = 0;
        var issuedUnconfirmed = 0;
        var unaudited = 0;

        // 1. Every revocation that returned OK is in force at both nodes.
        var issued = calls.Where(c => c.Kind is CallKind.Issue or CallKind.IssueRevokedTask && c.Ok).ToList();
        var okRevocations = calls.Where(c => c.Kind is CallKind.RevokeToken or CallKind.RevokeTask && c.Ok).ToList();
        var mustBeRevoked = new Dictionary<string, Call>(StringComparer.Ordinal);
        foreach (var revocation in okRevocations)
        {
            foreach (var token in issued.Where(t => revocation.Kind == CallKind.RevokeToken ? t.TokenId == revocation.TokenId : t.Task == revocation.Task))
            {
                mustBeRevoked.TryAdd(token.TokenId!, token);
            }
        }

        foreach (var token in mustBeRevoked.Values)
        {
            var accepted = false;
            foreach (var node in nodes)
            {
                var answer = await new RevocationService.RevocationServiceClient(node.Channel).IntrospectAsync(new IntrospectRequest { Token = token.AccessToken }, deadline: Deadline());
                if (answer.Active || answer.InactiveReason != "revoked")
                {
                    accepted = true;
                    violations.Add($"token {token.TokenId} (task {token.Task}) revoked with OK is {(answer.Active ? "active" : answer.InactiveReason)} at {node.Name}");
                }
            }

            lost += accepted ? 1 : 0;
        }

        // 2. A revoked task stays ended at both nodes.
        foreach (var revocation in okRevocations.Where(r => r.Kind == CallKind.RevokeTask).DistinctBy(r => r.Task))
        {
            for (var n = 0; n < nodes.Count; n++)
            {
                var outcome = await IssueAsync(trust, nodes[n], n, revocation.Lane, revocation.Task);
                if (outcome.Ok)
                {
                    issuedUnconfirmed++;
                    violations.Add($"task {revocation.Task} revoked with OK at {nodes[revocation.Node].Name} was issued a token at {nodes[n].Name} after the failover");
                }
                else if (outcome.Reason != "TASK_ENDED")
                {
                    violations.Add($"issuing for revoked task {revocation.Task} at {nodes[n].Name} answered {outcome.Outcome}, not FAILED_PRECONDITION/TASK_ENDED");
                }
            }
        }

        // 3. Nothing was issued during the workload for a task after its revocation returned OK anywhere.
        foreach (var token in issued)
        {
            if (okRevocations.FirstOrDefault(r => r.Kind == CallKind.RevokeTask && r.Task == token.Task && r.EndMs < token.StartMs) is { } earlier)
            {
                issuedUnconfirmed++;
                violations.Add($"token {token.TokenId} issued at {nodes[token.Node].Name} at {token.StartMs:F0} ms for task {token.Task}, revoked with OK at {nodes[earlier.Node].Name} at {earlier.EndMs:F0} ms");
            }
        }

        // 4. Tokens nobody tried to revoke are still accepted: the checks above are not vacuous.
        var kept = issued.Where(t => t.StartMs < killedMs && !calls.Any(r => r.Kind is CallKind.RevokeTask or CallKind.RevokeToken && r.Task == t.Task)).Take(20).ToList();
        foreach (var token in kept)
        {
            foreach (var node in nodes)
            {
                var answer = await new RevocationService.RevocationServiceClient(node.Channel).IntrospectAsync(new IntrospectRequest { Token = token.AccessToken }, deadline: Deadline());
                if (!answer.Active)
                {
                    violations.Add($"token {token.TokenId} that nobody revoked is {answer.InactiveReason} at {node.Name}");
                }
            }
        }

        // 5. Every token handed out and every revocation acknowledged is in its node's audit log.
        for (var n = 0; n < nodes.Count; n++)
        {
            var records = AuditReader.ReadAll([nodes[n].AuditPath]).Select(r => r.Event).ToList();
            var issuedIds = records.Where(e => e.Type == AuditEventTypes.CredentialIssued.Name).Select(e => e.TokenId).ToHashSet(StringComparer.Ordinal);
            var revocationIds = records.Where(e => e.Type == AuditEventTypes.Revoked.Name).Select(e => e.RevocationId).ToHashSet(StringComparer.Ordinal);
            foreach (var token in issued.Where(t => t.Node == n && !issuedIds.Contains(t.TokenId)))
            {
                unaudited++;
                violations.Add($"token {token.TokenId} issued at {nodes[n].Name} is not in its audit log");
            }

            foreach (var revocation in okRevocations.Where(r => r.Node == n && !revocationIds.Contains(r.RevocationId)))
            {
                unaudited++;
                violations.Add($"revocation {revocation.RevocationId} acknowledged at {nodes[n].Name} is not in its audit log");
            }
        }

        // 6. Every refusal names a precise, catalogued reason; nothing is INTERNAL or unexplained.
        foreach (var refused in calls.Where(c => !c.Ok && !FailoverCalls.IsPrecise(c)))
        {
            violations.Add($"{refused.Kind} at {nodes[refused.Node].Name} at {refused.StartMs:F0} ms answered {refused.Outcome}");
        }

        // 7. Both nodes issue and revoke again, without a restart.
        var afterRetries = 0;
        for (var n = 0; n < nodes.Count; n++)
        {
            var task = $"after-{n}-{Guid.NewGuid():N}"[..24];
            var node = n;
            var (fresh, issueRetries) = await FailoverCalls.RetryWhileUnavailableAsync(() => IssueAsync(trust, nodes[node], node, lane: 0, task), AfterFailoverRetryBound);
            var (revoked, revokeRetries) = await FailoverCalls.RetryWhileUnavailableAsync(() => RevokeAsync(nodes[node], node, responder, new Broker.V1.RevocationSelector { TaskId = task }, lane: 0, task, CallKind.RevokeTask), AfterFailoverRetryBound);
            afterRetries += issueRetries + revokeRetries;
            if (!fresh.Ok || !revoked.Ok)
            {
                violations.Add($"after the failover {nodes[n].Name} answered issue {fresh.Outcome}, revoke {revoked.Outcome} (retried STATE_UNAVAILABLE {issueRetries} + {revokeRetries} times)");
            }
        }

        verify.Stop();
        var report = Report(calls, nodes, killedMs, promotedMs, inSyncMs, promotedName, lost, issuedUnconfirmed, unaudited, violations.Count, mustBeRevoked.Count, kept.Count, afterRetries, verify.Elapsed, testWorkers, shippedMinimum);
        output.WriteLine(report);
        await FailoverReport.WriteSectionAsync(ReportTitle, report);

        Assert.True(violations.Count == 0, "Failover violations:\n" + string.Join('\n', violations.Take(50)) + "\n\n" + report + "\n" + redis.Logs() + "\n" + string.Join('\n', nodes.Select(n => n.LogTail())));
        Assert.Equal(0, lost);
        Assert.Equal(0, issuedUnconfirmed);
        Assert.NotEmpty(kept);
        Assert.NotEmpty(mustBeRevoked);
        for (var n = 0; n < nodes.Count; n++)
        {
            var firstIssue = FailoverCalls.FirstOkAfter(calls, n, killedMs, CallKind.Issue);
            Assert.True(firstIssue is not null, $"{nodes[n].Name} issued during the workload after the kill");
            Assert.True(FailoverCalls.FirstOkAfter(calls, n, killedMs, CallKind.RevokeTask, CallKind.RevokeToken) is not null, $"{nodes[n].Name} revoked during the workload after the kill");
            var window = TimeSpan.FromMilliseconds(firstIssue.EndMs - killedMs);
            Assert.True(window < WindowSanityBound, $"{nodes[n].Name} issued again {window.TotalSeconds:F1} s after the kill (sanity bound {WindowSanityBound.TotalSeconds} s)");
        }
    }

    // ---- the workload -----------------------------------------------------------------------

    /// <summary>As <see cref="SentinelFailoverWorkload"/>'s callers: issue at home, then revoke the token or the task at the other node (and ask home for the revoked task again), or keep it.</summary>
    private async Task LaneAsync(TestTrustDomain trust, List<BrokerNodeProcess> nodes, int home, int lane, Metadata responder, CancellationToken stop)
    {
        var other = 1 - home;
        for (var i = 0; i < MaxIterationsPerLane && !stop.IsCancellationRequested && _clock.Elapsed < MaxWorkload; i++)
        {
            var task = $"np-{lane}-{i}";
            var issue = await IssueAsync(trust, nodes[home], home, lane, task);
            _calls.Enqueue(issue);
            switch (i % 3)
            {
                case 0 when issue.Ok:
                    _calls.Enqueue(await RevokeAsync(nodes[other], other, responder, new Broker.V1.RevocationSelector { TokenId = issue.TokenId }, lane, task, CallKind.RevokeToken, issue.TokenId));
                    break;
                case 1:
                    var revoke = await RevokeAsync(nodes[other], other, responder, new Broker.V1.RevocationSelector { TaskId = task }, lane, task, CallKind.RevokeTask);
                    _calls.Enqueue(revoke);
                    if (revoke.Ok)
                    {
                        _calls.Enqueue(await IssueAsync(trust, nodes[home], home, lane, task) with { Kind = CallKind.IssueRevokedTask });
                    }

                    break;
            }

            try
            {
                await Task.Delay(40, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task<Call> IssueAsync(TestTrustDomain trust, BrokerNodeProcess node, int nodeIndex, int lane, string task)
    {
        var request = new IssueCredentialRequest
        {
            TaskId = task,
            Phase = Phase.Planning,
            Scopes = { "repo:read" },
            Audience = ResourceAudience,
            Attestation = new AttestationProof { JwtSvid = trust.MintSvid(trust.SpiffeId($"/agents/lane-{lane}"), Audience, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5)) },
        };
        var start = _clock.Elapsed.TotalMilliseconds;
        try
        {
            var response = await new CredentialService.CredentialServiceClient(node.Channel).IssueCredentialAsync(request, deadline: Deadline());
            return new Call(nodeIndex, lane, CallKind.Issue, task, start, _clock.Elapsed.TotalMilliseconds, StatusCode.OK, null, response.TokenId, response.AccessToken);
        }
        catch (RpcException ex)
        {
            return new Call(nodeIndex, lane, CallKind.Issue, task, start, _clock.Elapsed.TotalMilliseconds, ex.StatusCode, BrokerRefusal.From(ex).Reason);
        }
    }

    private async Task<Call> RevokeAsync(BrokerNodeProcess node, int nodeIndex, Metadata responder, Broker.V1.RevocationSelector selector, int lane, string task, CallKind kind, string? tokenId = null)
    {
        var start = _clock.Elapsed.TotalMilliseconds;
        try
        {
            var response = await new AdminService.AdminServiceClient(node.Channel).RevokeAsync(new RevokeRequest { Reason = "failover workload", Selectors = { selector } }, responder, deadline: Deadline());
            return new Call(nodeIndex, lane, kind, task, start, _clock.Elapsed.TotalMilliseconds, StatusCode.OK, null, tokenId, RevocationId: response.Revocations.Single().Id);
        }
        catch (RpcException ex)
        {
            return new Call(nodeIndex, lane, kind, task, start, _clock.Elapsed.TotalMilliseconds, ex.StatusCode, BrokerRefusal.From(ex).Reason, tokenId);
        }
    }

    // ---- what a stall would look like -------------------------------------------------------

    /// <summary>Liveness every 100 ms: a node whose pool is starved answers late or not at all, whatever Redis does.</summary>
    private async Task ProbeAsync(BrokerNodeProcess node, int index, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var start = _clock.Elapsed.TotalMilliseconds;
            var live = await node.LiveAsync(TimeSpan.FromSeconds(20));
            _probes.Enqueue(new Probe(index, start, _clock.Elapsed.TotalMilliseconds, live));
            try
            {
                await Task.Delay(ProbeInterval, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>The node's own view, from its /metrics: how old its revocation state is and how many pool threads it runs.</summary>
    private async Task ScrapeAsync(HttpClient http, BrokerNodeProcess node, int index, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var at = _clock.Elapsed.TotalMilliseconds;
            try
            {
                var samples = PrometheusText.Parse(await http.GetStringAsync(new Uri(node.HttpAddress + "/metrics"), stop));
                _scrapes.Enqueue(new Scrape(
                    index,
                    at,
                    PrometheusText.Sum(samples, "broker_revocation_staleness_seconds"),
                    PrometheusText.Sum(samples, "broker_revocation_current"),
                    PrometheusText.Sum(samples, "dotnet_thread_pool_thread_count_total"),
                    PrometheusText.Sum(samples, "dotnet_thread_pool_queue_length_total")));
                await Task.Delay(TimeSpan.FromMilliseconds(250), stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (HttpRequestException)
            {
            }
        }
    }

    /// <summary>How late the test process's own timers fire: a stall here is the callers', not a node's.</summary>
    private async Task OwnLagAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var start = _clock.Elapsed.TotalMilliseconds;
            try
            {
                await Task.Delay(ProbeInterval, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            _ownLag.Enqueue((start, _clock.Elapsed.TotalMilliseconds - start - ProbeInterval.TotalMilliseconds));
        }
    }

    // ---- helpers and the report ---------------------------------------------------------------

    private int OkCount(int node, CallKind kind) => _calls.Count(c => c.Node == node && c.Kind == kind && c.Ok);

    private static DateTime Deadline() => DateTime.UtcNow + CallDeadline;

    private static async Task<bool> HealthyAsync(BrokerNodeProcess node)
    {
        try
        {
            var status = await new Grpc.Health.V1.Health.HealthClient(node.Channel).CheckAsync(new Grpc.Health.V1.HealthCheckRequest(), deadline: Deadline());
            return status.Status == Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving;
        }
        catch (RpcException)
        {
            return false;
        }
    }

    private static string WriteKey(string directory, string name)
    {
        var path = Path.Combine(directory, name);
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        File.WriteAllText(path, key.ExportPkcs8PrivateKeyPem());
        return path;
    }

    private static string Policy(string jwksPath) => $"""
        version: 1
        trust:
          spiffe:
            - trust_domain: example.org
              jwt_bundle_file: {jwksPath}
              refresh: 30s
        agents:
          - name: callers
            match: spiffe://example.org/agents/*
            phases:
              planning:
                scopes: [repo:read]
                audiences: [{ResourceAudience}]
                max_ttl: 10m
        """;

    private string Report(Call[] calls, List<BrokerNodeProcess> nodes, double killed, double promotedMs, double inSyncMs, string promoted, int lost, int issuedUnconfirmed, int unaudited, int violations, int revokedChecked, int keptChecked, int afterRetries, TimeSpan verifyTime, int testWorkers, int? shippedMinimum)
    {
        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"==== {ReportTitle} ====");
        report.AppendLine(CultureInfo.InvariantCulture, $"topology: Redis primary + 2 replicas (min-replicas-to-write 1) + 3 Sentinels (quorum 2, down-after 1000 ms), 2 broker nodes each alone in its own process (dotnet Broker.Server.dll, environment as deploy/local/cluster.sh, RevocationMinReplicas=1, runtimeconfig ThreadPool.MinThreads {shippedMinimum?.ToString(CultureInfo.InvariantCulture) ?? "unset (runtime default)"}{(BrokerNodeProcess.ServerDllOverridden ? " from BROKER_DLL" : "")}); callers in the test process (pool minimum {testWorkers}, not raised)");
        report.AppendLine(CultureInfo.InvariantCulture, $"workload: {nodes.Count * LanesPerNode} callers, {FailoverCalls.Seconds(_clock.Elapsed.TotalMilliseconds)}; primary SIGKILLed at {FailoverCalls.Seconds(killed)}, {promoted} promoted +{FailoverCalls.Seconds(promotedMs - killed)}, the other replica in sync with it +{FailoverCalls.Seconds(inSyncMs - killed)}, old primary left down");
        FailoverCalls.AppendCounts(report, calls, killed);

        report.AppendLine(CultureInfo.InvariantCulture, $"lost (revoked with OK, accepted afterwards by a node): {lost} of {revokedChecked} tokens checked at 2 nodes");
        report.AppendLine(CultureInfo.InvariantCulture, $"issued without confirmed revocation state (token for a task already revoked with OK): {issuedUnconfirmed}");
        report.AppendLine(CultureInfo.InvariantCulture, $"tokens or revocations missing from their node's audit log: {unaudited}; imprecise refusals (INTERNAL, no reason): {calls.Count(c => !c.Ok && !FailoverCalls.IsPrecise(c))}; unrevoked tokens still accepted: {keptChecked} checked");
        FailoverCalls.AppendWindows(report, calls, killed, [.. nodes.Select(node => node.Name)]);

        report.AppendLine("stall (liveness probe every 100 ms from the kill on; the node's own /metrics every 250 ms):");
        for (var n = 0; n < nodes.Count; n++)
        {
            var probes = _probes.Where(p => p.Node == n && p.StartMs >= killed).OrderBy(p => p.StartMs).ToList();
            var slowest = probes.Count == 0 ? double.NaN : probes.Max(p => p.EndMs - p.StartMs);
            var answered = probes.Where(p => p.Live).Select(p => p.EndMs).ToList();
            var gap = answered.Zip(answered.Skip(1), (a, b) => b - a).DefaultIfEmpty(double.NaN).Max();
            var scrapes = _scrapes.Where(s => s.Node == n).ToList();
            var after = scrapes.Where(s => s.AtMs >= killed).ToList();
            var staleness = after.Where(s => s.Staleness is not null).Select(s => s.Staleness!.Value).DefaultIfEmpty(double.NaN).Max();
            var notCurrent = after.Count(s => s.Current == 0);
            var threadsBefore = scrapes.Where(s => s.AtMs < killed && s.PoolThreads is not null).Select(s => s.PoolThreads!.Value).DefaultIfEmpty(double.NaN).Max();
            var threadsAfter = scrapes.Where(s => s.AtMs >= killed && s.PoolThreads is not null).Select(s => s.PoolThreads!.Value).DefaultIfEmpty(double.NaN).Max();
            var queue = scrapes.Where(s => s.AtMs >= killed && s.PoolQueue is not null).Select(s => s.PoolQueue!.Value).DefaultIfEmpty(double.NaN).Max();
            report.AppendLine(CultureInfo.InvariantCulture, $"  {nodes[n].Name}: slowest liveness answer {FailoverCalls.Seconds(slowest)}, longest gap between answers {FailoverCalls.Seconds(gap)}, not live {probes.Count(p => !p.Live)} of {probes.Count}; /metrics answered {after.Count} times, revocation staleness max {Num(staleness, "F2")} s, not current in {notCurrent}; pool threads {Num(threadsBefore, "F0")} before, max {Num(threadsAfter, "F0")} after; pool queue max {Num(queue, "F0")}");
        }

        var ownLag = _ownLag.Where(l => l.AtMs >= killed).Select(l => l.LagMs).DefaultIfEmpty(double.NaN).Max();
        report.AppendLine(CultureInfo.InvariantCulture, $"  test process (callers): a 100 ms timer fired at most {FailoverCalls.Seconds(ownLag)} late");
        report.AppendLine(CultureInfo.InvariantCulture, $"verification: {FailoverCalls.Seconds(verifyTime.TotalMilliseconds)}; issue and revoke after the failover retried STATE_UNAVAILABLE {afterRetries} times; violations: {violations}");
        report.AppendLine("rerun: dotnet test tests/Broker.Server.Tests --filter \"FullyQualifiedName~SentinelFailoverNodeProcessTests\"");
        return report.ToString();
    }

    private static string Num(double value, string format) => double.IsNaN(value) ? "n/a" : value.ToString(format, CultureInfo.InvariantCulture);
}
