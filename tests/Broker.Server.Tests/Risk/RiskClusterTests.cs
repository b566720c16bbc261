using Broker.Client;
using Broker.Core.Policy;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Broker.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Broker.Server.Tests.Risk;

/// <summary>
/// Two broker nodes sharing one real Redis, with a runtime-protection service reporting risk:
/// the gate, containment, the fail-closed stance, hostile signals, and telemetry kept apart.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class RiskClusterTests(RedisFixture redis) : IAsyncLifetime
{
    private const string Source = "/runtime-protection";
    private const string AgentPath = "/agents/planner";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private readonly string _prefix = RedisFixture.NewPrefix();
    private readonly CapturingLoggerProvider _logs = new();
    private BrokerScenario _a = null!;
    private BrokerTestHost _bHost = null!;
    private GrpcChannel _bChannel = null!;
    private ReportSignalRequest? _lastCritical;

    private CredentialService.CredentialServiceClient B => new(_bChannel);

    private SignalService.SignalServiceClient Signals => new(_a.Channel);

    private RiskAdminService.RiskAdminServiceClient RiskAdmin => new(_a.Channel);

    private string Agent => _a.Trust.SpiffeId(AgentPath);

    public async Task InitializeAsync()
    {
        _a = await BrokerScenario.StartAsync(redis.Server.Configuration, redisPrefix: _prefix);
        var policy = (await File.ReadAllTextAsync(_a.PolicyPath)).TrimEnd() + "\n" + """
            signals:
              sources: [spiffe://example.org/runtime-protection]

            """;
        await File.WriteAllTextAsync(_a.PolicyPath, policy);
        var provider = _a.Host.Services.GetRequiredService<IPolicyProvider>();
        Assert.True(await EventuallyAsync(() => Task.FromResult(provider.Current.Signals is not null)), "the node did not reload the policy");

        _bHost = await _a.StartPeerAsync(redis.Server.Configuration, _prefix);
        _bChannel = _bHost.CreateChannel();
        _a.Host.Services.GetRequiredService<ILoggerFactory>().AddProvider(_logs);
        _bHost.Services.GetRequiredService<ILoggerFactory>().AddProvider(_logs);
    }

    public async Task DisposeAsync()
    {
        _bChannel.Dispose();
        await _bHost.DisposeAsync();
        await _a.DisposeAsync();
    }

    private ReportSignalRequest Signal(string id, RiskLevel level, string? task = null, string? evidence = null, DateTimeOffset? observed = null, TimeSpan? validFor = null, string source = Source, string? agent = null)
    {
        var at = observed ?? DateTimeOffset.UtcNow;
        return new ReportSignalRequest
        {
            Attestation = new AttestationProof { JwtSvid = _a.Svid(source) },
            SignalId = id,
            Agent = agent ?? Agent,
            TaskId = task ?? "",
            Level = level,
            Score = 87.5,
            Detector = "prompt_injection",
            EvidenceRef = evidence ?? "s3://runtime-evidence/" + id,
            ObservedAt = Timestamp.FromDateTimeOffset(at),
            ValidUntil = Timestamp.FromDateTimeOffset(at + (validFor ?? TimeSpan.FromMinutes(10))),
        };
    }

    private async Task<BrokerRefusal> RefusedSignalAsync(ReportSignalRequest request)
    {
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await Signals.ReportSignalAsync(request));
        return BrokerRefusal.From(ex);
    }

    private async Task<BrokerRefusal> RefusedAtBAsync(IssueCredentialRequest request)
    {
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await B.IssueCredentialAsync(request));
        return BrokerRefusal.From(ex);
    }

    private static ReportSignalRequest Forged(ReportSignalRequest request)
    {
        request.Attestation = new AttestationProof { JwtSvid = "not.a.jwt" };
        return request;
    }

    private IssueCredentialRequest Execution(string task) => _a.Request(task: task, phase: Phase.Execution, scopes: "deploy:staging");

    [Fact]
    public async Task A_signal_reported_at_one_node_gates_issuance_at_another()
    {
        var unknown = await RefusedAtBAsync(Execution("gate-1"));
        Assert.Equal("RISK_UNKNOWN", unknown.Reason);

        await Signals.ReportSignalAsync(Signal("sig-none", RiskLevel.None, observed: DateTimeOffset.UtcNow.AddSeconds(-5)));
        Assert.NotEmpty((await B.IssueCredentialAsync(Execution("gate-1"))).AccessToken);

        var high = await Signals.ReportSignalAsync(Signal("sig-high", RiskLevel.High));
        Assert.Equal(SignalOutcome.Applied, high.Outcome);
        Assert.False(high.Contained);

        var refused = await RefusedAtBAsync(Execution("gate-2"));
        Assert.Equal(StatusCode.PermissionDenied, refused.Status);
        Assert.Equal("RISK_TOO_HIGH", refused.Reason);
        Assert.Equal("sig-high", refused.Metadata["signal_id"]);
        Assert.Equal("high", refused.Metadata["level"]);
        Assert.Equal("medium", refused.Metadata["ceiling"]);
        Assert.Contains("sig-high", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("s3://", refused.Message, StringComparison.Ordinal);

        // Planning's ceiling (high) still allows it.
        Assert.NotEmpty((await B.IssueCredentialAsync(_a.Request(task: "gate-3"))).AccessToken);

        var audit = string.Join('\n', await AuditLinesAsync(_bHost));
        Assert.Contains("RISK_TOO_HIGH", audit, StringComparison.Ordinal);
        Assert.Contains("signal sig-high", audit, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_task_signal_gates_only_that_task()
    {
        await Signals.ReportSignalAsync(Signal("sig-agent-ok", RiskLevel.Low, observed: DateTimeOffset.UtcNow.AddSeconds(-5)));
        await Signals.ReportSignalAsync(Signal("sig-task-high", RiskLevel.High, task: "bad-task"));

        Assert.Equal("RISK_TOO_HIGH", (await RefusedAtBAsync(Execution("bad-task"))).Reason);
        Assert.NotEmpty((await B.IssueCredentialAsync(Execution("good-task"))).AccessToken);
    }

    [Fact]
    public async Task A_critical_signal_revokes_live_tokens_everywhere_and_freezes_issuance_until_cleared()
    {
        await Signals.ReportSignalAsync(Signal("sig-ok", RiskLevel.None, observed: DateTimeOffset.UtcNow.AddSeconds(-5)));
        var live = (await _a.Client.IssueCredentialAsync(_a.Request(task: "crit-1"))).AccessToken;
        var introspectB = new RevocationService.RevocationServiceClient(_bChannel);
        await using var api = await ResourceApi.StartAsync(_a.Host.Issuer, BrokerScenario.ResourceAudience, revocationAddress: _bHost.GrpcAddress, resourceServerToken: _a.Operators.ResourceServerToken);
        using var http = new HttpClient();
        Assert.True(await EventuallyAsync(async () => (await GetWhoAmIAsync(http, api, live)).StatusCode == System.Net.HttpStatusCode.OK));

        _lastCritical = Signal("sig-crit", RiskLevel.Critical);
        var critical = await Signals.ReportSignalAsync(_lastCritical);

        Assert.True(critical.Contained);
        Assert.NotEmpty(critical.RevocationIds);
        Assert.True(await EventuallyAsync(async () => (await introspectB.IntrospectAsync(new IntrospectRequest { Token = live })).InactiveReason == "revoked"));
        Assert.True(await EventuallyAsync(async () =>
        {
            using var response = await GetWhoAmIAsync(http, api, live);
            return response.StatusCode == System.Net.HttpStatusCode.Unauthorized
                && response.Headers.WwwAuthenticate.ToString().Contains("token revoked", StringComparison.Ordinal);
        }));
        var frozen = await RefusedAtBAsync(_a.Request(task: "crit-2"));
        Assert.Equal("AGENT_FROZEN", frozen.Reason);
        Assert.Equal("sig-crit", frozen.Metadata["signal_id"]);

        // The runtime service retrying the same signal re-asserts containment and changes nothing else.
        var retry = await Signals.ReportSignalAsync(critical.SignalId == "sig-crit" ? _lastCritical! : throw new InvalidOperationException());
        Assert.Equal(SignalOutcome.Duplicate, retry.Outcome);
        Assert.True(retry.Contained);

        var shown = await RiskAdmin.GetRiskAsync(new GetRiskRequest { Agent = Agent }, _a.As("alice", "responder"));
        Assert.Equal("sig-crit", shown.Freeze.SignalId);

        var cleared = await RiskAdmin.ClearRiskAsync(new ClearRiskRequest { Agent = Agent, Reason = "INC-7: detector false positive" }, _a.As("alice", "responder"));
        Assert.Equal("sig-crit", cleared.Lifted.SignalId);

        // Planning proceeds on unknown risk; the revoked token stays revoked; execution waits for a fresh signal.
        var fresh = await B.IssueCredentialAsync(_a.Request(task: "crit-3"));
        Assert.NotEmpty(fresh.AccessToken);
        Assert.Equal("revoked", (await introspectB.IntrospectAsync(new IntrospectRequest { Token = live })).InactiveReason);
        Assert.Equal("RISK_UNKNOWN", (await RefusedAtBAsync(Execution("crit-4"))).Reason);

        var audit = string.Join('\n', await _a.AuditLinesAsync());
        Assert.Contains("\"risk.frozen\"", audit, StringComparison.Ordinal);
        Assert.Contains("\"risk.cleared\"", audit, StringComparison.Ordinal);
        Assert.Contains("broker:risk", audit, StringComparison.Ordinal);
        Assert.Contains("risk critical (signal sig-crit)", audit, StringComparison.Ordinal);
        Assert.Contains("operator:alice", audit, StringComparison.Ordinal);
    }

    private static async Task<HttpResponseMessage> GetWhoAmIAsync(HttpClient http, ResourceApi api, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, api.Address + "/whoami");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        return await http.SendAsync(request);
    }

    [Fact]
    public async Task Stale_risk_follows_each_phases_stance()
    {
        await Signals.ReportSignalAsync(Signal("sig-short", RiskLevel.None, validFor: TimeSpan.FromSeconds(1)));

        // Once the signal lapses execution fails closed (its default) while planning proceeds.
        Assert.True(await EventuallyAsync(async () =>
        {
            try
            {
                await B.IssueCredentialAsync(Execution("stale-" + Guid.NewGuid().ToString("N")));
                return false;
            }
            catch (RpcException ex) when (BrokerRefusal.From(ex).Reason == "RISK_UNKNOWN")
            {
                return true;
            }
        }));
        Assert.NotEmpty((await B.IssueCredentialAsync(_a.Request(task: "stale-planning"))).AccessToken);
    }

    [Fact]
    public async Task Hostile_signals_get_precise_refusals_and_change_nothing()
    {
        var baseline = Signal("sig-base", RiskLevel.Low, observed: DateTimeOffset.UtcNow.AddSeconds(-5));
        await Signals.ReportSignalAsync(baseline);

        Assert.Equal("SIGNAL_SOURCE_NOT_ALLOWED", (await RefusedSignalAsync(Signal("h-1", RiskLevel.None, source: "/agents/other"))).Reason);
        var self = await RefusedSignalAsync(Signal("h-2", RiskLevel.None, agent: _a.Trust.SpiffeId(Source)));
        Assert.Equal("SIGNAL_SELF_REPORT", self.Reason);
        Assert.Equal(StatusCode.PermissionDenied, self.Status);
        // An agent attested as itself is no source either: it can never lower its own risk.
        Assert.Equal("SIGNAL_SOURCE_NOT_ALLOWED", (await RefusedSignalAsync(Signal("h-3", RiskLevel.None, source: AgentPath))).Reason);
        Assert.Equal("SIGNAL_LEVEL_UNKNOWN", (await RefusedSignalAsync(Signal("h-4", (RiskLevel)42))).Reason);
        Assert.Equal("SIGNAL_LEVEL_UNKNOWN", (await RefusedSignalAsync(Signal("h-5", RiskLevel.Unspecified))).Reason);
        var future = await RefusedSignalAsync(Signal("h-6", RiskLevel.None, observed: DateTimeOffset.UtcNow.AddMinutes(5)));
        Assert.Equal("SIGNAL_FROM_FUTURE", future.Reason);
        Assert.Equal(StatusCode.InvalidArgument, future.Status);
        Assert.Equal("SIGNAL_EXPIRED", (await RefusedSignalAsync(Signal("h-7", RiskLevel.None, observed: DateTimeOffset.UtcNow.AddMinutes(-20)))).Reason);
        var tooLong = await RefusedSignalAsync(Signal("h-8", RiskLevel.None, validFor: TimeSpan.FromDays(2)));
        Assert.Equal("SIGNAL_INVALID", tooLong.Reason);
        Assert.Equal("valid_until", tooLong.Metadata["field"]);
        Assert.Equal("signal_id", (await RefusedSignalAsync(Signal("bad id!", RiskLevel.None))).Metadata["field"]);
        Assert.Equal(StatusCode.Unauthenticated, (await RefusedSignalAsync(Forged(Signal("h-9", RiskLevel.None)))).Status);

        // Replays: the same signal again is a duplicate; the same id with other content is refused.
        var again = await Signals.ReportSignalAsync(baseline);
        Assert.Equal(SignalOutcome.Duplicate, again.Outcome);
        Assert.Equal("SIGNAL_ID_REUSED", (await RefusedSignalAsync(Signal("sig-base", RiskLevel.None))).Reason);

        var state = await RiskAdmin.GetRiskAsync(new GetRiskRequest { Agent = Agent }, _a.As("alice", "auditor"));
        Assert.Equal("sig-base", state.Current.SignalId);
        Assert.Equal(Broker.V1.RiskLevel.Low, state.Current.Level);
        Assert.Null(state.Freeze);
        var telemetry = await RiskAdmin.TailSignalsAsync(new TailSignalsRequest { Limit = 100 }, _a.As("tess", "telemetry-reader"));
        Assert.DoesNotContain(telemetry.Signals, s => s.SignalId.StartsWith("h-", StringComparison.Ordinal));
        Assert.Contains("risk.signal_refused", string.Join('\n', await _a.AuditLinesAsync()), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Evidence_reaches_telemetry_and_never_the_audit_log_or_the_logs()
    {
        var canary = "CANARY-" + Guid.NewGuid().ToString("N");

        await Signals.ReportSignalAsync(Signal("sig-canary", RiskLevel.Critical, evidence: "https://evidence.example/" + canary));
        await RefusedAtBAsync(_a.Request(task: "canary-task"));

        var tail = await RiskAdmin.TailSignalsAsync(new TailSignalsRequest { Limit = 10 }, _a.As("tess", "telemetry-reader"));
        Assert.Contains(tail.Signals, s => s.SignalId == "sig-canary" && s.EvidenceRef.Contains(canary, StringComparison.Ordinal));
        var telemetryFile = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(_a.Host.AuditPath))!, "telemetry.log");
        Assert.Contains(canary, await ReadSharedAsync(telemetryFile), StringComparison.Ordinal);

        var audit = string.Join('\n', (await _a.AuditLinesAsync()).Concat(await AuditLinesAsync(_bHost)));
        Assert.Contains("sig-canary", audit, StringComparison.Ordinal);
        Assert.DoesNotContain(canary, audit, StringComparison.Ordinal);
        Assert.DoesNotContain(_logs.Messages, m => m.Contains(canary, StringComparison.Ordinal));
        Assert.Contains(_logs.Messages, m => m.Contains("sig-canary", StringComparison.Ordinal));

        // Separate readers: an auditor cannot read telemetry.
        var denied = await Assert.ThrowsAsync<RpcException>(async () => await RiskAdmin.TailSignalsAsync(new TailSignalsRequest(), _a.As("audrey", "auditor")));
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
    }

    private static async Task<string[]> AuditLinesAsync(BrokerTestHost host)
    {
        var lines = new List<string>();
        foreach (var segment in Broker.Core.Audit.AuditFiles.All(host.AuditPath))
        {
            lines.AddRange((await ReadSharedAsync(segment.Path)).Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }

        return [.. lines];
    }

    private static async Task<string> ReadSharedAsync(string path)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return await reader.ReadToEndAsync();
    }

    private static async Task<bool> EventuallyAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (DateTime.UtcNow < deadline)
        {
            if (await condition())
            {
                return true;
            }

            await Task.Delay(20);
        }

        return false;
    }
}
