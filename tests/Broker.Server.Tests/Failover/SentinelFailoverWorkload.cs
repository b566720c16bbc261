using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using Broker.Client;
using Broker.Core.Audit;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Broker.V1;
using Grpc.Core;
using Grpc.Net.Client;
using Xunit.Abstractions;

namespace Broker.Server.Tests.Failover;

/// <summary>
/// Kills the Redis primary with SIGKILL while callers issue and revoke at two broker nodes
/// connected through Sentinel and lets Sentinel promote a replica. With one replica the old
/// primary is restarted (Sentinel turns it into a replica; writes cannot resume before it is
/// back); with more, it is left down and the surviving replicas follow the new primary. Then it
/// checks, independently of what the workload saw, that no acknowledged revocation was lost, that
/// nothing was issued on state a node could not confirm, that every refusal was precise, and that
/// both nodes recovered without a restart. The unavailability window is measured and reported
/// (one section per topology in artifacts/failover-report.txt), never asserted beyond a generous
/// sanity bound.
/// </summary>
internal sealed class SentinelFailoverWorkload(ITestOutputHelper output, int replicas)
{
    private const int LanesPerNode = 2;
    private const int MaxIterationsPerLane = 500;
    private static readonly TimeSpan MaxWorkload = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan BeforeKill = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan AfterRecovery = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan RecoveryBound = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan CallDeadline = TimeSpan.FromSeconds(10);

    /// <summary>Far beyond any window measured: a sanity bound, not a performance assertion.</summary>
    private static readonly TimeSpan WindowSanityBound = TimeSpan.FromSeconds(45);
    private static readonly TimeSpan AfterFailoverRetryBound = TimeSpan.FromSeconds(20);

    private readonly Stopwatch _clock = new();
    private readonly ConcurrentQueue<Call> _calls = new();

    public async Task RunAsync()
    {
        using var floor = new ThreadPoolFloor();
        await using var redis = await SentinelCluster.StartAsync(replicas);
        // The workload retries issuance for tasks just revoked hundreds of times a minute from one
        // workload, and checks each refusal's precise reason: the refusal budget (tested on its
        // own in RefusalFloodTests) is raised so it never answers RATE_LIMITED here.
        var settings = new Dictionary<string, string?> { ["Broker:RevocationMinReplicas"] = "1", [FailoverBudget.Key] = FailoverBudget.Permits };
        const string prefix = "failover:";
        await using var a = await BrokerScenario.StartAsync(redis.Configuration, redisPrefix: prefix, settings: settings);
        await using var peer = await a.StartPeerAsync(redis.Configuration, prefix);
        using var peerChannel = peer.CreateChannel();
        var nodes = new[]
        {
            new Node("A", a.Host, a.Channel),
            new Node("B", peer, peerChannel),
        };
        await using var api = await ResourceApi.StartAsync(a.Host.Issuer, BrokerScenario.ResourceAudience, revocationAddress: peer.GrpcAddress, resourceServerToken: a.Operators.ResourceServerToken);
        using var http = new HttpClient { Timeout = CallDeadline };
        var responder = a.As("alice", "responder");

        foreach (var node in nodes)
        {
            await EventuallyAsync(() => HealthyAsync(node), TimeSpan.FromSeconds(30), $"node {node.Name} healthy on the Sentinel cluster");
        }

        // ---- workload and failure, concurrently -------------------------------------------
        _clock.Start();
        using var stop = new CancellationTokenSource();
        var lanes = new List<Task>();
        for (var n = 0; n < nodes.Length; n++)
        {
            for (var l = 0; l < LanesPerNode; l++)
            {
                var lane = n * LanesPerNode + l;
                var home = n;
                lanes.Add(Task.Run(() => LaneAsync(a, nodes, home, lane, responder, stop.Token)));
            }
        }

        var failure = new FailureTimeline();
        Exception? chaosError = null;
        try
        {
            // Kill once both nodes have been issuing and revoking under load for a while.
            await EventuallyAsync(() => Task.FromResult(_clock.Elapsed >= BeforeKill && nodes.Select((_, i) => i).All(i => OkCount(i, CallKind.Issue) >= 20 && OkCount(i, CallKind.RevokeTask) + OkCount(i, CallKind.RevokeToken) >= 10)), TimeSpan.FromSeconds(30), "both nodes to issue and revoke before the failure");
            failure.KilledMs = _clock.Elapsed.TotalMilliseconds;
            await redis.InitialPrimary.KillAsync();
            var promoted = await redis.WaitForPromotionAsync(redis.InitialPrimary, TimeSpan.FromSeconds(30));
            failure.PromotedMs = _clock.Elapsed.TotalMilliseconds;
            failure.Promoted = promoted.Name;
            if (replicas == 1)
            {
                // The new primary has no replica until the old one is back: restart it, once
                // every Sentinel follows the new primary.
                await redis.WaitForEverySentinelToFollowAsync(promoted, TimeSpan.FromSeconds(30));
                await redis.InitialPrimary.RestartAsync();
                failure.RestartedMs = _clock.Elapsed.TotalMilliseconds;
                await redis.WaitForPairInSyncAsync(promoted, redis.InitialPrimary, TimeSpan.FromSeconds(40));
                failure.RejoinedMs = _clock.Elapsed.TotalMilliseconds;
            }
            else
            {
                // The old primary stays down: the surviving replicas are all the new primary gets.
                foreach (var survivor in redis.InitialReplicas.Where(r => r != promoted))
                {
                    await redis.WaitForPairInSyncAsync(promoted, survivor, TimeSpan.FromSeconds(30));
                }

                failure.RejoinedMs = _clock.Elapsed.TotalMilliseconds;
            }

            // Run on until both nodes have issued and revoked again, plus a little, within the cap.
            await EventuallyAsync(() => Task.FromResult(FailoverCalls.Recovered(_calls, 2, failure.KilledMs) || lanes.All(l => l.IsCompleted)), RecoveryBound, "both nodes to issue and revoke after the failover", throwOnTimeout: false);
            await Task.Delay(AfterRecovery);
        }
        catch (Exception ex)
        {
            chaosError = ex;
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(lanes);
            _clock.Stop();
        }

        Assert.True(chaosError is null, $"The failure could not be staged: {chaosError}\n{redis.Logs()}");

        // ---- independent verification ------------------------------------------------------
        var verify = Stopwatch.StartNew();
        foreach (var node in nodes)
        {
            await EventuallyAsync(() => HealthyAsync(node), TimeSpan.FromSeconds(30), $"node {node.Name} healthy after the failover");
        }

        var calls = _calls.ToArray();
        var findings = new Findings();

        // 1. Every revocation that returned OK is in force at every node and at the resource server.
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

        await EventuallyAsync(() => ResourceServerCurrentAsync(http, api, a, nodes[0]), TimeSpan.FromSeconds(30), "the resource server's revocation stream to be current again");
        foreach (var token in mustBeRevoked.Values)
        {
            var lost = false;
            foreach (var node in nodes)
            {
                var answer = await node.Revocations.IntrospectAsync(new IntrospectRequest { Token = token.AccessToken }, deadline: Deadline());
                if (answer.Active || answer.InactiveReason != "revoked")
                {
                    lost = true;
                    findings.Violations.Add($"token {token.TokenId} (task {token.Task}) revoked with OK is {(answer.Active ? "active" : answer.InactiveReason)} at node {node.Name}");
                }
            }

            using var response = await GetAsync(http, api, token.AccessToken!);
            if (response.StatusCode != HttpStatusCode.Unauthorized || !response.Headers.WwwAuthenticate.ToString().Contains("token revoked", StringComparison.Ordinal))
            {
                lost = true;
                findings.Violations.Add($"token {token.TokenId} revoked with OK got {(int)response.StatusCode} {response.Headers.WwwAuthenticate} from the resource server");
            }

            findings.Lost += lost ? 1 : 0;
        }

        // 2. A revoked task stays ended at every node: nothing more is issued for it.
        foreach (var revocation in okRevocations.Where(r => r.Kind == CallKind.RevokeTask).DistinctBy(r => r.Task))
        {
            foreach (var node in nodes)
            {
                var outcome = await IssueAsync(a, node, revocation.Lane, revocation.Task);
                if (outcome.Ok)
                {
                    findings.IssuedWithoutConfirmedState++;
                    findings.Violations.Add($"task {revocation.Task} revoked with OK at {Name(revocation.Node)} was issued a token at {node.Name} after the failover");
                }
                else if (outcome.Reason != "TASK_ENDED")
                {
                    findings.Violations.Add($"issuing for revoked task {revocation.Task} at {node.Name} answered {outcome.Outcome}, not FAILED_PRECONDITION/TASK_ENDED");
                }
            }
        }

        // 3. Nothing was issued, during the workload, for a task after its revocation returned OK anywhere.
        foreach (var token in issued)
        {
            if (okRevocations.FirstOrDefault(r => r.Kind == CallKind.RevokeTask && r.Task == token.Task && r.EndMs < token.StartMs) is { } earlier)
            {
                findings.IssuedWithoutConfirmedState++;
                findings.Violations.Add($"token {token.TokenId} issued at {Name(token.Node)} at {token.StartMs:F0} ms for task {token.Task}, revoked with OK at {Name(earlier.Node)} at {earlier.EndMs:F0} ms");
            }
        }

        // 4. Tokens nobody revoked are still accepted: the checks above are not vacuous.
        // (Only tasks nobody tried to revoke: a revocation refused for want of a replica may still be in force.)
        var kept = issued.Where(t => t.StartMs < failure.KilledMs && !calls.Any(r => r.Kind is CallKind.RevokeTask or CallKind.RevokeToken && r.Task == t.Task)).Take(20).ToList();
        foreach (var token in kept)
        {
            foreach (var node in nodes)
            {
                var answer = await node.Revocations.IntrospectAsync(new IntrospectRequest { Token = token.AccessToken }, deadline: Deadline());
                if (!answer.Active && answer.InactiveReason == "revoked")
                {
                    findings.Violations.Add($"token {token.TokenId} that nobody revoked is {answer.InactiveReason} at {node.Name}");
                }
            }
        }

        // 5. Every token handed out and every revocation acknowledged is in its node's audit log.
        for (var n = 0; n < nodes.Length; n++)
        {
            var records = AuditReader.ReadAll([nodes[n].Host.AuditPath]).Select(r => r.Event).ToList();
            var issuedIds = records.Where(e => e.Type == AuditEventTypes.CredentialIssued.Name).Select(e => e.TokenId).ToHashSet(StringComparer.Ordinal);
            var revocationIds = records.Where(e => e.Type == AuditEventTypes.Revoked.Name).Select(e => e.RevocationId).ToHashSet(StringComparer.Ordinal);
            foreach (var token in issued.Where(t => t.Node == n && !issuedIds.Contains(t.TokenId)))
            {
                findings.Unaudited++;
                findings.Violations.Add($"token {token.TokenId} issued at {nodes[n].Name} is not in its audit log");
            }

            foreach (var revocation in okRevocations.Where(r => r.Node == n && !revocationIds.Contains(r.RevocationId)))
            {
                findings.Unaudited++;
                findings.Violations.Add($"revocation {revocation.RevocationId} acknowledged at {nodes[n].Name} is not in its audit log");
            }
        }

        // 6. Every refusal names a precise, catalogued reason; nothing is INTERNAL or unexplained.
        foreach (var refused in calls.Where(c => !c.Ok && !FailoverCalls.IsPrecise(c)))
        {
            findings.Violations.Add($"{refused.Kind} at {Name(refused.Node)} at {refused.StartMs:F0} ms answered {refused.Outcome}");
        }

        // 7. Both nodes issue and revoke again, without a restart.
        var recoveredNodes = new List<string>();
        foreach (var node in nodes)
        {
            var task = $"after-{node.Name}-{Guid.NewGuid():N}"[..24];
            var (fresh, issueRetries) = await FailoverCalls.RetryWhileUnavailableAsync(() => IssueAsync(a, node, lane: 0, task), AfterFailoverRetryBound);
            var (revoked, revokeRetries) = await FailoverCalls.RetryWhileUnavailableAsync(() => RevokeAsync(node, responder, new Broker.V1.RevocationSelector { TaskId = task }), AfterFailoverRetryBound);
            findings.AfterFailoverRetries += issueRetries + revokeRetries;
            if (fresh.Ok && revoked.Ok)
            {
                recoveredNodes.Add(node.Name);
            }
            else
            {
                findings.Violations.Add($"after the failover node {node.Name} answered issue {fresh.Outcome}, revoke {revoked.Outcome}");
            }
        }

        verify.Stop();
        var report = Report(calls, nodes, failure, findings, mustBeRevoked.Count, kept.Count, verify.Elapsed);
        output.WriteLine(report);
        await FailoverReport.WriteSectionAsync(ReportTitle, report);

        Assert.True(findings.Violations.Count == 0, "Failover violations:\n" + string.Join('\n', findings.Violations.Take(50)) + "\n\n" + report + "\n" + redis.Logs());
        Assert.Equal(0, findings.Lost);
        Assert.Equal(0, findings.IssuedWithoutConfirmedState);
        Assert.Equal(new[] { "A", "B" }, recoveredNodes);
        Assert.NotEmpty(kept);
        Assert.NotEmpty(mustBeRevoked);
        foreach (var (node, i) in nodes.Select((node, i) => (node, i)))
        {
            Assert.True(FailoverCalls.FirstOkAfter(calls, i, failure.KilledMs, CallKind.Issue) is not null, $"node {node.Name} issued during the workload after the kill");
            Assert.True(FailoverCalls.FirstOkAfter(calls, i, failure.KilledMs, CallKind.RevokeTask, CallKind.RevokeToken) is not null, $"node {node.Name} revoked during the workload after the kill");
            var window = TimeSpan.FromMilliseconds(FailoverCalls.FirstOkAfter(calls, i, failure.KilledMs, CallKind.Issue)!.EndMs - failure.KilledMs);
            Assert.True(window < WindowSanityBound, $"node {node.Name} issued again {window.TotalSeconds:F1} s after the kill (sanity bound {WindowSanityBound.TotalSeconds} s)");
        }
    }

    private string ReportTitle => $"Sentinel failover report: {Replicas(replicas)}";

    private static string Replicas(int count) => count == 1 ? "1 replica" : $"{count} replicas";

    // ---- the workload -----------------------------------------------------------------------

    /// <summary>
    /// One caller: issues at its home node, then (in turn) revokes that token by id at the other
    /// node, revokes the task at the other node and probes issuance for it at home, or keeps it.
    /// </summary>
    private async Task LaneAsync(BrokerScenario scenario, Node[] nodes, int home, int lane, Metadata responder, CancellationToken stop)
    {
        var other = 1 - home;
        for (var i = 0; i < MaxIterationsPerLane && !stop.IsCancellationRequested && _clock.Elapsed < MaxWorkload; i++)
        {
            var task = $"fo-{lane}-{i}";
            var issue = await IssueAsync(scenario, nodes[home], lane, task, home);
            Record(issue);
            switch (i % 3)
            {
                case 0 when issue.Ok:
                    Record(await RevokeAsync(nodes[other], responder, new Broker.V1.RevocationSelector { TokenId = issue.TokenId }, other, lane, task, CallKind.RevokeToken, issue.TokenId));
                    break;
                case 1:
                    var revoke = await RevokeAsync(nodes[other], responder, new Broker.V1.RevocationSelector { TaskId = task }, other, lane, task, CallKind.RevokeTask);
                    Record(revoke);
                    if (revoke.Ok)
                    {
                        Record(await IssueAsync(scenario, nodes[home], lane, task, home) with { Kind = CallKind.IssueRevokedTask });
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

    private async Task<Call> IssueAsync(BrokerScenario scenario, Node node, int lane, string task, int nodeIndex = -1)
    {
        var start = _clock.Elapsed.TotalMilliseconds;
        try
        {
            var response = await node.Credentials.IssueCredentialAsync(scenario.Request(svid: scenario.Svid($"/agents/lane-{lane}"), task: task), deadline: Deadline());
            return new Call(nodeIndex, lane, CallKind.Issue, task, start, _clock.Elapsed.TotalMilliseconds, StatusCode.OK, null, response.TokenId, response.AccessToken);
        }
        catch (RpcException ex)
        {
            return new Call(nodeIndex, lane, CallKind.Issue, task, start, _clock.Elapsed.TotalMilliseconds, ex.StatusCode, BrokerRefusal.From(ex).Reason);
        }
    }

    private async Task<Call> RevokeAsync(Node node, Metadata responder, Broker.V1.RevocationSelector selector, int nodeIndex = -1, int lane = -1, string task = "", CallKind kind = CallKind.RevokeTask, string? tokenId = null)
    {
        var start = _clock.Elapsed.TotalMilliseconds;
        try
        {
            var response = await node.Admin.RevokeAsync(new RevokeRequest { Reason = "failover workload", Selectors = { selector } }, responder, deadline: Deadline());
            return new Call(nodeIndex, lane, kind, task, start, _clock.Elapsed.TotalMilliseconds, StatusCode.OK, null, tokenId, RevocationId: response.Revocations.Single().Id);
        }
        catch (RpcException ex)
        {
            return new Call(nodeIndex, lane, kind, task, start, _clock.Elapsed.TotalMilliseconds, ex.StatusCode, BrokerRefusal.From(ex).Reason, tokenId);
        }
    }

    private void Record(Call call) => _calls.Enqueue(call);

    private int OkCount(int node, CallKind kind) => _calls.Count(c => c.Node == node && c.Kind == kind && c.Ok);

    // ---- the report ---------------------------------------------------------------------------

    private sealed class FailureTimeline
    {
        public double KilledMs { get; set; } = double.NaN;

        public double PromotedMs { get; set; } = double.NaN;

        public double RestartedMs { get; set; } = double.NaN;

        /// <summary>With one replica, the old primary back in sync as a replica; with more, every surviving replica in sync with the new primary.</summary>
        public double RejoinedMs { get; set; } = double.NaN;

        public string Promoted { get; set; } = "?";
    }

    private sealed class Findings
    {
        public int Lost { get; set; }

        public int IssuedWithoutConfirmedState { get; set; }

        public int Unaudited { get; set; }

        public int AfterFailoverRetries { get; set; }

        public List<string> Violations { get; } = [];
    }

    private string Report(Call[] calls, Node[] nodes, FailureTimeline failure, Findings findings, int revokedTokensChecked, int keptChecked, TimeSpan verifyTime)
    {
        var killed = failure.KilledMs;
        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"==== {ReportTitle} ====");
        report.AppendLine(CultureInfo.InvariantCulture, $"topology: Redis primary + {Replicas(replicas)} (min-replicas-to-write 1) + 3 Sentinels (quorum 2, down-after 1000 ms), 2 broker nodes (RevocationMinReplicas=1), 1 SDK resource server on node B");
        var timeline = replicas == 1
            ? $"replica promoted +{FailoverCalls.Seconds(failure.PromotedMs - killed)}, old primary restarted +{FailoverCalls.Seconds(failure.RestartedMs - killed)}, back in sync as a replica +{FailoverCalls.Seconds(failure.RejoinedMs - killed)}"
            : $"{failure.Promoted} promoted +{FailoverCalls.Seconds(failure.PromotedMs - killed)}, the other replica{(replicas > 2 ? "s" : "")} in sync with it +{FailoverCalls.Seconds(failure.RejoinedMs - killed)}, old primary left down";
        report.AppendLine(CultureInfo.InvariantCulture, $"workload: {nodes.Length * LanesPerNode} callers, {FailoverCalls.Seconds(_clock.Elapsed.TotalMilliseconds)}; primary SIGKILLed at {FailoverCalls.Seconds(killed)}, {timeline}");
        FailoverCalls.AppendCounts(report, calls, killed);

        report.AppendLine(CultureInfo.InvariantCulture, $"lost (revoked with OK, accepted afterwards by a node or the resource server): {findings.Lost} of {revokedTokensChecked} tokens checked at 2 nodes + resource server");
        report.AppendLine(CultureInfo.InvariantCulture, $"issued without confirmed revocation state (token for a task already revoked with OK): {findings.IssuedWithoutConfirmedState}");
        report.AppendLine(CultureInfo.InvariantCulture, $"tokens or revocations missing from their node's audit log: {findings.Unaudited}; imprecise refusals (INTERNAL, no reason): {calls.Count(c => !c.Ok && !FailoverCalls.IsPrecise(c))}; unrevoked tokens still accepted: {keptChecked} checked");
        FailoverCalls.AppendWindows(report, calls, killed, [.. nodes.Select(node => "node " + node.Name)]);
        report.AppendLine(CultureInfo.InvariantCulture, $"verification: {FailoverCalls.Seconds(verifyTime.TotalMilliseconds)}; issue and revoke after the failover retried STATE_UNAVAILABLE {findings.AfterFailoverRetries} times; violations: {findings.Violations.Count}");
        report.AppendLine("rerun: dotnet test tests/Broker.Server.Tests --filter \"FullyQualifiedName~Failover\"");
        return report.ToString();
    }

    // ---- helpers ------------------------------------------------------------------------------

    internal sealed class Node(string name, BrokerTestHost host, GrpcChannel channel)
    {
        public string Name { get; } = name;

        public BrokerTestHost Host { get; } = host;

        public GrpcChannel Channel { get; } = channel;

        public CredentialService.CredentialServiceClient Credentials { get; } = new(channel);

        public AdminService.AdminServiceClient Admin { get; } = new(channel);

        public RevocationService.RevocationServiceClient Revocations { get; } = new(channel);
    }

    private static string Name(int node) => node switch { 0 => "A", 1 => "B", _ => "?" };

    internal static DateTime Deadline() => DateTime.UtcNow + CallDeadline;

    internal static async Task<bool> HealthyAsync(Node node)
    {
        try
        {
            var health = new Grpc.Health.V1.Health.HealthClient(node.Channel);
            var status = await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest(), deadline: Deadline());
            return status.Status == Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving;
        }
        catch (RpcException)
        {
            return false;
        }
    }

    /// <summary>The resource server accepts a fresh token: its revocation stream is current again (it fails closed while stale).</summary>
    private async Task<bool> ResourceServerCurrentAsync(HttpClient http, ResourceApi api, BrokerScenario scenario, Node node)
    {
        var fresh = await IssueAsync(scenario, node, lane: 0, $"probe-{Guid.NewGuid():N}"[..20]);
        if (!fresh.Ok)
        {
            return false;
        }

        using var response = await GetAsync(http, api, fresh.AccessToken!);
        return response.StatusCode == HttpStatusCode.OK;
    }

    internal static async Task<HttpResponseMessage> GetAsync(HttpClient http, ResourceApi api, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, api.Address + "/whoami");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        return await http.SendAsync(request);
    }

    internal static async Task EventuallyAsync(Func<Task<bool>> condition, TimeSpan bound, string what, bool throwOnTimeout = true)
    {
        var deadline = DateTime.UtcNow + bound;
        while (DateTime.UtcNow < deadline)
        {
            if (await condition())
            {
                return;
            }

            await Task.Delay(50);
        }

        if (throwOnTimeout)
        {
            throw new TimeoutException($"Timed out after {bound.TotalSeconds} s waiting for {what}.");
        }
    }
}
