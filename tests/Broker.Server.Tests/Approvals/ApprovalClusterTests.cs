using System.Text.Json;
using Broker.Client;
using Broker.Core.Policy;
using Broker.Server.Tests.Infrastructure;
using Broker.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.DependencyInjection;

namespace Broker.Server.Tests.Approvals;

/// <summary>
/// Approval gates across two broker nodes sharing one real Redis: the agent asks and waits on
/// one node, approvers act through the other, and the token arrives for exactly what was asked.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class ApprovalClusterTests(RedisFixture redis) : IAsyncLifetime
{
    private const string AgentPath = "/agents/planner";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(15);

    private readonly string _prefix = RedisFixture.NewPrefix();
    private readonly byte[] _webhookKey = new byte[32];
    private WebhookReceiver _webhook = null!;
    private BrokerScenario _a = null!;
    private BrokerTestHost? _bHost;
    private GrpcChannel _bChannel = null!;

    private CredentialService.CredentialServiceClient A => _a.Client;

    private CredentialService.CredentialServiceClient B => new(_bChannel);

    private ApprovalAdminService.ApprovalAdminServiceClient Approvals => new(_a.Channel);

    private string Agent => _a.Trust.SpiffeId(AgentPath);

    public async Task InitializeAsync()
    {
        // Every node sweeps for requests that expired unseen (quickly here, so tests need not wait
        // 10 s) and posts every approval move to a webhook.
        _webhook = await WebhookReceiver.StartAsync();
        System.Security.Cryptography.RandomNumberGenerator.Fill(_webhookKey);
        var keyPath = Path.Combine(Directory.CreateTempSubdirectory("broker-webhook-").FullName, "webhook.key");
        await File.WriteAllBytesAsync(keyPath, _webhookKey);
        _a = await BrokerScenario.StartAsync(redis.Server.Configuration, redisPrefix: _prefix, settings: new Dictionary<string, string?>
        {
            ["Broker:Approvals:SweepInterval"] = "00:00:00.200",
            ["Broker:Approvals:WebhookUrl"] = _webhook.Url.ToString(),
            ["Broker:Approvals:WebhookKeyPath"] = keyPath,
        });
        var policy = (await File.ReadAllTextAsync(_a.PolicyPath))
            .Replace("match: spiffe://example.org/agents/*", "match: spiffe://example.org/agents/*\n    owner: olga", StringComparison.Ordinal)
            .Replace("scopes: [repo:read, deploy:staging]", "scopes: [repo:read, deploy:staging, deploy:prod, payments:write, db:drop]", StringComparison.Ordinal)
            .TrimEnd() + "\n" + """
                    on_unknown_risk: allow
                    gated_scopes:
                      - scopes: [deploy:prod]
                        approvers: [approver]
                        validity: 10m
                      - scopes: [payments:write]
                        approvers: [approver]
                        quorum: 2
                        require_justification: true
                      - scopes: [db:drop]
                        approvers: [dba]
                        validity: 2s
            signals:
              sources: [spiffe://example.org/runtime-protection]

            """;
        await File.WriteAllTextAsync(_a.PolicyPath, policy);
        var provider = _a.Host.Services.GetRequiredService<IPolicyProvider>();
        Assert.True(await EventuallyAsync(() => Task.FromResult(provider.Current.Signals is not null)), "the node did not reload the policy");
        Assert.Equal("olga", provider.Current.Agents[0].Owner);

        _bHost = await _a.StartPeerAsync(redis.Server.Configuration, _prefix);
        _bChannel = _bHost.CreateChannel();
    }

    public async Task DisposeAsync()
    {
        _bChannel.Dispose();
        if (_bHost is not null)
        {
            await _bHost.DisposeAsync();
        }

        await _a.DisposeAsync();
        await _webhook.DisposeAsync();
    }

    private IssueCredentialRequest Ask(string task, string justification = "", params string[] scopes)
    {
        var request = _a.Request(task: task, phase: Phase.Execution, scopes: scopes.Length == 0 ? ["deploy:prod"] : scopes);
        request.Justification = justification;
        return request;
    }

    private async Task<PendingApproval> PendingAsync(CredentialService.CredentialServiceClient node, IssueCredentialRequest request)
    {
        var response = await node.IssueCredentialAsync(request);
        Assert.Empty(response.AccessToken);
        Assert.NotNull(response.Pending);
        Assert.StartsWith("sha256:", response.Pending.RequestDigest, StringComparison.Ordinal);
        return response.Pending;
    }

    private AsyncServerStreamingCall<ApprovalUpdate> Wait(CredentialService.CredentialServiceClient node, string approvalId) =>
        node.WaitForApproval(
            new WaitForApprovalRequest { ApprovalId = approvalId, Attestation = new AttestationProof { JwtSvid = _a.Svid(AgentPath) } },
            deadline: DateTime.UtcNow + Bound);

    /// <summary>Reads the stream to its end: the token, or the status that ended it.</summary>
    private static async Task<(IssueCredentialResponse? Credential, BrokerRefusal? Refusal)> FinishAsync(AsyncServerStreamingCall<ApprovalUpdate> call)
    {
        try
        {
            IssueCredentialResponse? credential = null;
            while (await call.ResponseStream.MoveNext(CancellationToken.None))
            {
                credential = call.ResponseStream.Current.Credential ?? credential;
            }

            return (credential, null);
        }
        catch (RpcException ex)
        {
            return (null, BrokerRefusal.From(ex));
        }
    }

    private async Task<BrokerRefusal> RefusedApprovalAsync(Func<Task> call)
    {
        var ex = await Assert.ThrowsAsync<RpcException>(call);
        return BrokerRefusal.From(ex);
    }

    private async Task<string[]> AllAuditAsync() => [.. await _a.AuditLinesAsync(), .. await AuditLinesAsync(_bHost!)];

    [Fact]
    public async Task An_agent_waiting_on_one_node_gets_its_token_once_an_approver_approves_through_the_other()
    {
        var pending = await PendingAsync(B, Ask("deploy-1", "ship release 42"));

        using var wait = Wait(B, pending.ApprovalId);
        Assert.True(await wait.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(ApprovalState.Pending, wait.ResponseStream.Current.State);
        Assert.Equal(pending.RequestDigest, wait.ResponseStream.Current.RequestDigest);

        var listed = await Approvals.ListApprovalsAsync(new ListApprovalsRequest(), _a.As("ann", "approver"));
        var shown = Assert.Single(listed.Approvals, a => a.ApprovalId == pending.ApprovalId);
        Assert.Equal(pending.RequestDigest, shown.RequestDigest);
        Assert.Equal(Agent, shown.Agent);
        Assert.Equal("deploy-1", shown.TaskId);
        Assert.Equal(["deploy:prod"], shown.Scopes);
        Assert.Equal("ship release 42", shown.Justification);
        Assert.Equal("olga", shown.Owner);

        // The answer shows the request after the vote; the waiting agent, woken by it, may
        // already have used it.
        var approved = await Approvals.ApproveAsync(new ApproveRequest { ApprovalId = pending.ApprovalId }, _a.As("ann", "approver"));
        Assert.Contains(approved.State, new[] { ApprovalState.Approved, ApprovalState.Consumed });

        var (credential, refusal) = await FinishAsync(wait);
        Assert.Null(refusal);
        Assert.NotNull(credential);
        Assert.Equal(["deploy:prod"], credential.GrantedScopes);
        Assert.Equal(pending.ApprovalId, credential.ApprovalId);
        using var claims = JsonDocument.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(credential.AccessToken.Split('.')[1]));
        Assert.Equal(pending.ApprovalId, claims.RootElement.GetProperty("approval_id").GetString());
        Assert.Equal("deploy-1", claims.RootElement.GetProperty("task").GetString());

        var shownAfter = await Approvals.GetApprovalAsync(new GetApprovalRequest { ApprovalId = pending.ApprovalId }, _a.As("ann", "approver"));
        Assert.Equal(ApprovalState.Consumed, shownAfter.State);
        Assert.Equal(credential.TokenId, shownAfter.TokenId);

        // The agent asked, a person approved, the agent got its token: in that order, each naming the approval and digest.
        var audit = await AllAuditAsync();
        var requested = Assert.Single(audit, l => l.Contains("\"approval.requested\"", StringComparison.Ordinal));
        var vote = Assert.Single(audit, l => l.Contains("\"approval.approved\"", StringComparison.Ordinal));
        var consumed = Assert.Single(audit, l => l.Contains("\"approval.consumed\"", StringComparison.Ordinal));
        foreach (var line in new[] { requested, vote, consumed })
        {
            Assert.Contains(pending.ApprovalId, line, StringComparison.Ordinal);
            Assert.Contains(pending.RequestDigest, line, StringComparison.Ordinal);
        }

        Assert.Contains("operator:ann", vote, StringComparison.Ordinal);
        Assert.Contains(credential.TokenId, consumed, StringComparison.Ordinal);
        var bAudit = await AuditLinesAsync(_bHost!);
        Assert.True(
            Array.FindIndex(bAudit, l => l.Contains("\"approval.requested\"", StringComparison.Ordinal))
            < Array.FindIndex(bAudit, l => l.Contains("\"approval.consumed\"", StringComparison.Ordinal)));
        Assert.Contains(bAudit, l => l.Contains("\"credential.issued\"", StringComparison.Ordinal) && l.Contains(pending.ApprovalId, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_quorum_of_two_needs_two_distinct_people()
    {
        var pending = await PendingAsync(A, Ask("pay-1", "refund INC-9", "payments:write"));

        var first = await Approvals.ApproveAsync(new ApproveRequest { ApprovalId = pending.ApprovalId }, _a.As("ann", "approver"));
        Assert.Equal(ApprovalState.Pending, first.State);
        var twice = await RefusedApprovalAsync(async () => await Approvals.ApproveAsync(new ApproveRequest { ApprovalId = pending.ApprovalId }, _a.As("ann", "approver")));
        Assert.Equal("APPROVAL_ALREADY_GIVEN", twice.Reason);
        Assert.Equal(StatusCode.FailedPrecondition, twice.Status);

        var second = await new ApprovalAdminService.ApprovalAdminServiceClient(_bChannel).ApproveAsync(new ApproveRequest { ApprovalId = pending.ApprovalId }, _a.As("bob", "approver"));
        Assert.Equal(ApprovalState.Approved, second.State);
        Assert.Equal(["ann", "bob"], second.Approvals.Select(v => v.Approver));

        var (credential, _) = await FinishAsync(Wait(B, pending.ApprovalId));
        Assert.NotNull(credential);
    }

    [Fact]
    public async Task A_gate_requiring_a_justification_refuses_a_request_without_one()
    {
        var refused = await _a.RefusedAsync(Ask("pay-2", "", "payments:write"));
        Assert.Equal("JUSTIFICATION_REQUIRED", refused.Reason);
    }

    [Fact]
    public async Task The_owner_a_non_member_and_the_agent_itself_cannot_approve()
    {
        var pending = await PendingAsync(A, Ask("deploy-owner"));

        var owner = await RefusedApprovalAsync(async () => await Approvals.ApproveAsync(new ApproveRequest { ApprovalId = pending.ApprovalId }, _a.As("olga", "approver")));
        Assert.Equal("APPROVER_IS_OWNER", owner.Reason);
        Assert.Equal(StatusCode.PermissionDenied, owner.Status);

        // Holding the approver role is not enough for a gate whose group is someone else's.
        var drop = await PendingAsync(A, Ask("drop-eligible", "", "db:drop"));
        var notMember = await RefusedApprovalAsync(async () => await Approvals.ApproveAsync(new ApproveRequest { ApprovalId = drop.ApprovalId }, _a.As("ann", "approver")));
        Assert.Equal("APPROVER_NOT_ELIGIBLE", notMember.Reason);

        // Without the approver role the API is closed.
        var responder = await Assert.ThrowsAsync<RpcException>(async () => await Approvals.ApproveAsync(new ApproveRequest { ApprovalId = pending.ApprovalId }, _a.As("rita", "responder")));
        Assert.Equal(StatusCode.PermissionDenied, responder.StatusCode);

        // The agent's own credentials are never operator credentials: neither its token nor its SVID opens the API.
        var token = (await A.IssueCredentialAsync(_a.Request(task: "agent-self"))).AccessToken;
        foreach (var bearer in new[] { token, _a.Svid(AgentPath) })
        {
            var agent = await Assert.ThrowsAsync<RpcException>(async () => await Approvals.ApproveAsync(
                new ApproveRequest { ApprovalId = pending.ApprovalId },
                new Metadata { { "authorization", "Bearer " + bearer } }));
            Assert.Equal(StatusCode.Unauthenticated, agent.StatusCode);
        }

        var shown = await Approvals.GetApprovalAsync(new GetApprovalRequest { ApprovalId = pending.ApprovalId }, _a.As("ann", "approver"));
        Assert.Equal(ApprovalState.Pending, shown.State);
        Assert.Empty(shown.Approvals);
        Assert.Contains(await _a.AuditLinesAsync(), l => l.Contains("\"approval.approved\"", StringComparison.Ordinal) && l.Contains("APPROVER_IS_OWNER", StringComparison.Ordinal) && l.Contains("operator:olga", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_denial_ends_the_wait_with_who_and_why()
    {
        var pending = await PendingAsync(A, Ask("deploy-deny"));
        using var wait = Wait(B, pending.ApprovalId);
        Assert.True(await wait.ResponseStream.MoveNext(CancellationToken.None));

        await Approvals.DenyAsync(new DenyRequest { ApprovalId = pending.ApprovalId, Reason = "change freeze until Monday" }, _a.As("ann", "approver"));

        var (credential, refusal) = await FinishAsync(wait);
        Assert.Null(credential);
        Assert.Equal("APPROVAL_DENIED", refusal!.Reason);
        Assert.Equal(StatusCode.FailedPrecondition, refusal.Status);
        Assert.Contains("change freeze until Monday", refusal.Message, StringComparison.Ordinal);
        var late = await RefusedApprovalAsync(async () => await Approvals.ApproveAsync(new ApproveRequest { ApprovalId = pending.ApprovalId }, _a.As("bob", "approver")));
        Assert.Equal("APPROVAL_DENIED", late.Reason);
        Assert.Contains(await _a.AuditLinesAsync(), l => l.Contains("\"approval.denied\"", StringComparison.Ordinal) && l.Contains("change freeze until Monday", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Expiry_ends_the_wait_and_a_late_approval_is_refused()
    {
        var pending = await PendingAsync(B, Ask("drop-1", "", "db:drop"));
        Assert.True(pending.ExpiresAt.ToDateTimeOffset() - DateTimeOffset.UtcNow <= TimeSpan.FromSeconds(3));

        var (credential, refusal) = await FinishAsync(Wait(B, pending.ApprovalId));

        Assert.Null(credential);
        Assert.Equal("APPROVAL_EXPIRED", refusal!.Reason);
        var late = await RefusedApprovalAsync(async () => await Approvals.ApproveAsync(new ApproveRequest { ApprovalId = pending.ApprovalId }, _a.As("dora", "approver", "dba")));
        Assert.Equal("APPROVAL_EXPIRED", late.Reason);
        Assert.Single(await AllAuditAsync(), l => l.Contains("\"approval.expired\"", StringComparison.Ordinal) && l.Contains(pending.ApprovalId, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Each_move_is_posted_to_the_webhook_signed_and_retried_after_a_refusal()
    {
        _webhook.RefuseNext(1);
        var svid = _a.Svid(AgentPath);
        var ask = Ask("deploy-hooked", "hotfix for INC-42");
        ask.Attestation = new AttestationProof { JwtSvid = svid };
        var pending = await PendingAsync(B, ask);
        await Approvals.ApproveAsync(new ApproveRequest { ApprovalId = pending.ApprovalId }, _a.As("ann", "approver"));

        var opened = await NoticeAsync(pending.ApprovalId, "approval.opened");
        var approved = await NoticeAsync(pending.ApprovalId, "approval.approved");

        // The first post was refused and retried.
        Assert.True(_webhook.Refused >= 1);
        foreach (var (body, signature) in new[] { opened, approved })
        {
            // Receivers verify t + "." + raw body with the shared key.
            var parts = signature!.Split(',').Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
            var signed = System.Text.Encoding.UTF8.GetBytes(parts["t"] + "." + body);
            Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.HMACSHA256.HashData(_webhookKey, signed)), parts["v1"]);
            Assert.InRange(long.Parse(parts["t"], System.Globalization.CultureInfo.InvariantCulture), DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeSeconds(), DateTimeOffset.UtcNow.ToUnixTimeSeconds());
            Assert.DoesNotContain(svid.Split('.')[2], body, StringComparison.Ordinal);
        }

        var openedJson = JsonDocument.Parse(opened.Body).RootElement;
        Assert.Equal(pending.RequestDigest, openedJson.GetProperty("request_digest").GetString());
        Assert.Equal(Agent, openedJson.GetProperty("agent").GetString());
        Assert.Equal("hotfix for INC-42", openedJson.GetProperty("justification").GetString());
        Assert.Equal(["deploy:prod"], openedJson.GetProperty("scopes").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("operator:ann", JsonDocument.Parse(approved.Body).RootElement.GetProperty("actor").GetString());
    }

    [Fact]
    public async Task A_webhook_that_keeps_refusing_never_fails_the_request_and_is_counted_as_failed()
    {
        _webhook.RefuseNext(1000);
        try
        {
            var pending = await PendingAsync(B, Ask("deploy-hook-down"));
            Assert.StartsWith("apr_", pending.ApprovalId, StringComparison.Ordinal);

            // Four attempts (about 1, 2 and 4 s apart, with jitter), then given up, logged and counted; the audit log has the request.
            using var http = new HttpClient();
            Assert.True(
                await EventuallyAsync(async () => PrometheusText.Sum(PrometheusText.Parse(await http.GetStringAsync(new Uri(_bHost!.HttpAddress + "/metrics"))), "broker_approvals_notifications_total", ("broker_outcome", "failed")) >= 1),
                "the failed notice was not counted");
            Assert.Contains(await AuditLinesAsync(_bHost!), l => l.Contains("\"approval.requested\"", StringComparison.Ordinal) && l.Contains(pending.ApprovalId, StringComparison.Ordinal));
        }
        finally
        {
            _webhook.RefuseNext(0);
        }
    }

    private async Task<(string Body, string? Signature)> NoticeAsync(string approvalId, string type)
    {
        (string Body, string? Signature) found = default;
        Assert.True(
            await EventuallyAsync(() => Task.FromResult(_webhook.Received.Any(r =>
            {
                var json = JsonDocument.Parse(r.Body).RootElement;
                var match = json.GetProperty("approval_id").GetString() == approvalId && json.GetProperty("type").GetString() == type;
                if (match)
                {
                    found = r;
                }

                return match;
            }))),
            $"no {type} notice for {approvalId}");
        return found;
    }

    [Fact]
    public async Task A_request_nobody_looks_at_is_audited_as_expired_exactly_once()
    {
        var pending = await PendingAsync(B, Ask("drop-unseen", "", "db:drop"));
        bool Expired(string line) => line.Contains("\"approval.expired\"", StringComparison.Ordinal) && line.Contains(pending.ApprovalId, StringComparison.Ordinal);

        // No waiter, lister or approver touches it: the sweep on either node records the expiry.
        Assert.True(await EventuallyAsync(async () => (await AllAuditAsync()).Any(Expired)), "no approval.expired record");

        // Both nodes keep sweeping; the store lets one of them win, once.
        var sweeps = DateTime.UtcNow + TimeSpan.FromSeconds(1);
        while (DateTime.UtcNow < sweeps)
        {
            await Task.Delay(100);
        }

        Assert.Single(await AllAuditAsync(), Expired);
        var listed = await Approvals.ListApprovalsAsync(new ListApprovalsRequest(), _a.As("ann", "approver"));
        Assert.DoesNotContain(listed.Approvals, a => a.ApprovalId == pending.ApprovalId);
        var info = await Approvals.GetApprovalAsync(new GetApprovalRequest { ApprovalId = pending.ApprovalId }, _a.As("ann", "approver"));
        Assert.Equal(ApprovalState.Expired, info.State);
    }

    [Fact]
    public async Task An_approval_covers_only_what_was_asked_and_other_scopes_need_a_new_one()
    {
        var pending = await PendingAsync(A, Ask("deploy-scopes"));
        await Approvals.ApproveAsync(new ApproveRequest { ApprovalId = pending.ApprovalId }, _a.As("ann", "approver"));

        // Asking again with a wider scope set, or for another task, is a new request with its own digest.
        var wider = await PendingAsync(A, Ask("deploy-scopes", "", "deploy:prod", "deploy:staging"));
        var otherTask = await PendingAsync(A, Ask("deploy-other"));
        Assert.NotEqual(pending.ApprovalId, wider.ApprovalId);
        Assert.NotEqual(pending.RequestDigest, wider.RequestDigest);
        Assert.NotEqual(pending.RequestDigest, otherTask.RequestDigest);
        Assert.Equal(ApprovalState.Pending, (await Approvals.GetApprovalAsync(new GetApprovalRequest { ApprovalId = wider.ApprovalId }, _a.As("ann", "approver"))).State);

        var (credential, _) = await FinishAsync(Wait(A, pending.ApprovalId));
        Assert.Equal(["deploy:prod"], credential!.GrantedScopes);

        // Single use: the same approval gives nothing a second time.
        var (again, refusal) = await FinishAsync(Wait(B, pending.ApprovalId));
        Assert.Null(again);
        Assert.Equal("APPROVAL_CONSUMED", refusal!.Reason);
    }

    [Fact]
    public async Task Risk_rising_after_approval_still_refuses_the_token()
    {
        var pending = await PendingAsync(A, Ask("deploy-risk"));
        await Approvals.ApproveAsync(new ApproveRequest { ApprovalId = pending.ApprovalId }, _a.As("ann", "approver"));

        var now = DateTimeOffset.UtcNow;
        await new SignalService.SignalServiceClient(_a.Channel).ReportSignalAsync(new ReportSignalRequest
        {
            Attestation = new AttestationProof { JwtSvid = _a.Svid("/runtime-protection") },
            SignalId = "sig-after-approval",
            Agent = Agent,
            Level = Broker.V1.RiskLevel.High,
            Score = 91,
            Detector = "tool_chaining",
            EvidenceRef = "s3://evidence/1",
            ObservedAt = Timestamp.FromDateTimeOffset(now),
            ValidUntil = Timestamp.FromDateTimeOffset(now.AddMinutes(10)),
        });

        var (credential, refusal) = await FinishAsync(Wait(B, pending.ApprovalId));
        Assert.Null(credential);
        Assert.Equal("RISK_TOO_HIGH", refusal!.Reason);

        // The approval is not used up by a refusal; it stays approved until it expires.
        var shown = await Approvals.GetApprovalAsync(new GetApprovalRequest { ApprovalId = pending.ApprovalId }, _a.As("ann", "approver"));
        Assert.Equal(ApprovalState.Approved, shown.State);
        Assert.DoesNotContain(await AllAuditAsync(), l => l.Contains("\"approval.consumed\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task When_the_node_the_agent_waits_on_stops_the_agent_reconnects_to_the_other_and_gets_its_token()
    {
        var pending = await PendingAsync(B, Ask("deploy-restart"));
        var wait = Wait(B, pending.ApprovalId);
        Assert.True(await wait.ResponseStream.MoveNext(CancellationToken.None));

        await _bHost!.DisposeAsync();
        _bHost = null;
        var (lost, broken) = await FinishAsync(wait);
        Assert.Null(lost);
        Assert.NotNull(broken);
        wait.Dispose();

        await Approvals.ApproveAsync(new ApproveRequest { ApprovalId = pending.ApprovalId }, _a.As("ann", "approver"));
        var (credential, refusal) = await FinishAsync(Wait(A, pending.ApprovalId));
        Assert.Null(refusal);
        Assert.Equal(pending.ApprovalId, credential!.ApprovalId);
    }

    [Fact]
    public async Task Concurrent_waiters_on_two_nodes_get_exactly_one_token()
    {
        var pending = await PendingAsync(A, Ask("deploy-race"));
        var waits = Enumerable.Range(0, 6).Select(i => FinishAsync(Wait(i % 2 == 0 ? A : B, pending.ApprovalId))).ToArray();
        await Approvals.ApproveAsync(new ApproveRequest { ApprovalId = pending.ApprovalId }, _a.As("ann", "approver"));

        var results = await Task.WhenAll(waits);

        Assert.Single(results, r => r.Credential is not null);
        Assert.All(results.Where(r => r.Credential is null), r => Assert.Equal("APPROVAL_CONSUMED", r.Refusal!.Reason));
        var audit = await AllAuditAsync();
        Assert.Single(audit, l => l.Contains("\"approval.consumed\"", StringComparison.Ordinal));
        Assert.Single(audit, l => l.Contains("\"credential.issued\"", StringComparison.Ordinal) && l.Contains(pending.ApprovalId, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_malformed_or_unknown_id_and_another_agents_wait_are_refused()
    {
        Assert.Equal("APPROVAL_ID_INVALID", (await FinishAsync(Wait(A, "nope"))).Refusal!.Reason);
        Assert.Equal("APPROVAL_NOT_FOUND", (await FinishAsync(Wait(A, "apr_" + new string('0', 32)))).Refusal!.Reason);

        var pending = await PendingAsync(A, Ask("deploy-mine"));
        var other = A.WaitForApproval(new WaitForApprovalRequest { ApprovalId = pending.ApprovalId, Attestation = new AttestationProof { JwtSvid = _a.Svid("/agents/other") } }, deadline: DateTime.UtcNow + Bound);
        Assert.Equal("APPROVAL_NOT_YOURS", (await FinishAsync(other)).Refusal!.Reason);

        // Refused waits leave no wake-up registration behind (agents choose the ids they send).
        Assert.Equal(0, _a.Host.Services.GetRequiredService<Broker.Core.Approvals.ApprovalWakeups>().Watched);
    }

    private static async Task<string[]> AuditLinesAsync(BrokerTestHost host)
    {
        var lines = new List<string>();
        foreach (var segment in Broker.Core.Audit.AuditFiles.All(host.AuditPath))
        {
            await using var stream = new FileStream(segment.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            lines.AddRange((await reader.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }

        return [.. lines];
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
