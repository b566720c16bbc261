using Broker.Client;
using Broker.Core.Policy;
using Broker.Server.Tests.Infrastructure;
using Broker.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Broker.Server.Tests.Issuance;

/// <summary>
/// With <c>single_use_proofs</c>, a proof's <c>jti</c> is consumed by the first attested call that
/// presents it, whatever that call is: a replay to any door is <c>UNAUTHENTICATED /
/// ATTESTATION_REPLAYED</c> and is audited.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class SingleUseProofTests(RedisFixture redis) : IAsyncLifetime
{
    private const string AgentPath = "/agents/planner";
    private const string SourcePath = "/runtime-protection";
    private const string Replayed = "ATTESTATION_REPLAYED";

    private BrokerScenario _a = null!;

    public async Task InitializeAsync()
    {
        _a = await BrokerScenario.StartAsync(redis.Server.Configuration, redisPrefix: RedisFixture.NewPrefix());
        var policy = (await File.ReadAllTextAsync(_a.PolicyPath))
            .Replace("refresh: 30s", "refresh: 30s\n      single_use_proofs: true", StringComparison.Ordinal)
            .Replace("max_ttl: 10m", "max_ttl: 10m\n        gated_scopes:\n          - scopes: [tickets:read]\n            approvers: [approver]", StringComparison.Ordinal)
            .TrimEnd() + "\n" + """
            signals:
              sources: [spiffe://example.org/runtime-protection]

            """;
        await File.WriteAllTextAsync(_a.PolicyPath, policy);
        var provider = _a.Host.Services.GetRequiredService<IPolicyProvider>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (provider.Current.Signals is null && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.True(provider.Current.Trust.SpiffeDomains.Single().SingleUseProofs, "the node did not reload the policy");
    }

    public async Task DisposeAsync() => await _a.DisposeAsync();

    private string Proof(string jti, string path = AgentPath) =>
        _a.Trust.MintSvid(_a.Trust.SpiffeId(path), BrokerScenario.Audience, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5), c => c["jti"] = jti);

    [Fact]
    public async Task A_proof_used_for_issuance_is_refused_when_replayed_and_the_replay_is_audited()
    {
        var proof = Proof("issue-once");
        await _a.Client.IssueCredentialAsync(_a.Request(proof, task: "single-issue"));

        var replay = await _a.RefusedAsync(_a.Request(proof, task: "single-issue-2"));

        Assert.Equal(StatusCode.Unauthenticated, replay.Status);
        Assert.Equal(Replayed, replay.Reason);
        await AssertAuditedAsync("attestation.refused");
    }

    [Fact]
    public async Task A_proof_used_to_end_a_task_cannot_end_it_again_or_buy_a_token()
    {
        await _a.Client.IssueCredentialAsync(_a.Request(Proof("end-setup"), task: "single-end"));
        var proof = Proof("end-once");
        await _a.Client.EndTaskAsync(new Broker.V1.EndTaskRequest { TaskId = "single-end", Attestation = new AttestationProof { JwtSvid = proof } });

        var endAgain = await Assert.ThrowsAsync<RpcException>(async () =>
            await _a.Client.EndTaskAsync(new Broker.V1.EndTaskRequest { TaskId = "single-end", Attestation = new AttestationProof { JwtSvid = proof } }));
        var issue = await _a.RefusedAsync(_a.Request(proof, task: "single-end-other"));

        Assert.Equal(StatusCode.Unauthenticated, endAgain.StatusCode);
        Assert.Equal(Replayed, BrokerRefusal.From(endAgain).Reason);
        Assert.Equal(Replayed, issue.Reason);
        await AssertAuditedAsync("attestation.refused");
    }

    [Fact]
    public async Task A_proof_that_opened_an_approval_request_cannot_open_another()
    {
        var proof = Proof("gate-once");
        var first = await _a.Client.IssueCredentialAsync(_a.Request(proof, task: "single-gate", scopes: "tickets:read"));
        Assert.NotNull(first.Pending);

        var replay = await _a.RefusedAsync(_a.Request(proof, task: "single-gate-2", scopes: "tickets:read"));

        Assert.Equal(StatusCode.Unauthenticated, replay.Status);
        Assert.Equal(Replayed, replay.Reason);
    }

    [Fact]
    public async Task A_proof_used_to_wait_for_an_approval_cannot_wait_again()
    {
        var pending = (await _a.Client.IssueCredentialAsync(_a.Request(Proof("wait-setup"), task: "single-wait", scopes: "tickets:read"))).Pending;
        var proof = Proof("wait-once");
        using (var cancel = new CancellationTokenSource())
        using (var first = _a.Client.WaitForApproval(new WaitForApprovalRequest { ApprovalId = pending.ApprovalId, Attestation = new AttestationProof { JwtSvid = proof } }, cancellationToken: cancel.Token))
        {
            Assert.True(await first.ResponseStream.MoveNext(CancellationToken.None));
            Assert.Equal(ApprovalState.Pending, first.ResponseStream.Current.State);
            await cancel.CancelAsync();
        }

        using var replay = _a.Client.WaitForApproval(new WaitForApprovalRequest { ApprovalId = pending.ApprovalId, Attestation = new AttestationProof { JwtSvid = proof } });
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await replay.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);
        Assert.Equal(Replayed, BrokerRefusal.From(refused).Reason);
        await AssertAuditedAsync("attestation.refused");
    }

    /// <summary>A replayed signal-source proof could otherwise freeze any agent.</summary>
    [Fact]
    public async Task A_replayed_signal_source_proof_reports_nothing_and_is_audited()
    {
        var signals = new SignalService.SignalServiceClient(_a.Channel);
        var proof = Proof("signal-once", SourcePath);
        await signals.ReportSignalAsync(Signal(proof, "sig-first", RiskLevel.Low));

        var replay = await Assert.ThrowsAsync<RpcException>(async () => await signals.ReportSignalAsync(Signal(proof, "sig-replayed", RiskLevel.Critical)));

        Assert.Equal(StatusCode.Unauthenticated, replay.StatusCode);
        Assert.Equal(Replayed, BrokerRefusal.From(replay).Reason);
        await AssertAuditedAsync("risk.signal_refused");
        var issued = await _a.Client.IssueCredentialAsync(_a.Request(Proof("after-signal"), task: "single-signal"));
        Assert.NotEmpty(issued.AccessToken);
    }

    private ReportSignalRequest Signal(string proof, string id, RiskLevel level)
    {
        var at = DateTimeOffset.UtcNow;
        return new ReportSignalRequest
        {
            Attestation = new AttestationProof { JwtSvid = proof },
            SignalId = id,
            Agent = _a.Trust.SpiffeId(AgentPath),
            Level = level,
            Score = 90,
            Detector = "prompt_injection",
            EvidenceRef = "s3://runtime-evidence/" + id,
            ObservedAt = Timestamp.FromDateTimeOffset(at),
            ValidUntil = Timestamp.FromDateTimeOffset(at + TimeSpan.FromMinutes(10)),
        };
    }

    private async Task AssertAuditedAsync(string type)
    {
        var audit = await _a.AuditLinesAsync();
        Assert.Contains(audit, l => l.Contains($"\"{type}\"", StringComparison.Ordinal) && l.Contains(Replayed, StringComparison.Ordinal));
    }
}
