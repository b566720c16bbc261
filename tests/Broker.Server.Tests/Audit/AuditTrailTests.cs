using System.Security.Cryptography;
using Broker.Client;
using Broker.Core.Audit;
using Broker.Server.Tests.Infrastructure;
using Broker.V1;
using Grpc.Core;

namespace Broker.Server.Tests.Audit;

/// <summary>The audit trail a real node writes: it verifies, holds no credentials, and stops issuance when it cannot be written.</summary>
public sealed class AuditTrailTests : IAsyncLifetime
{
    private BrokerScenario _broker = null!;

    public async Task InitializeAsync() => _broker = await BrokerScenario.StartAsync();

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    private string CheckpointPublicKeyFile => Path.Combine(Path.GetDirectoryName(_broker.Host.AuditPath)!, "dev", "trust", "audit-checkpoint.pub.pem");

    [Fact]
    public async Task A_real_runs_log_verifies_and_holds_token_ids_but_never_tokens()
    {
        var svids = new List<string>();
        var issued = new List<IssueCredentialResponse>();
        for (var i = 0; i < 4; i++)
        {
            var svid = _broker.Svid();
            svids.Add(svid);
            issued.Add(await _broker.Client.IssueCredentialAsync(_broker.Request(svid, task: $"verify-{i}")));
        }

        await _broker.RevokeAsync("incident 42: suspicious tool chain", new Broker.V1.RevocationSelector { TokenId = issued[0].TokenId });
        using var publicKey = ECDsa.Create();
        publicKey.ImportFromPem(await File.ReadAllTextAsync(CheckpointPublicKeyFile));

        var whileOpen = AuditVerifier.Verify([_broker.Host.AuditPath], publicKey);
        Assert.True(whileOpen.Ok, whileOpen.Problem?.ToString());

        var lines = await _broker.AuditLinesAsync();
        foreach (var response in issued)
        {
            Assert.Contains(lines, l => l.Contains("\"credential.issued\"", StringComparison.Ordinal) && l.Contains(response.TokenId, StringComparison.Ordinal));
            Assert.DoesNotContain(lines, l => l.Contains(response.AccessToken, StringComparison.Ordinal) || l.Contains(response.AccessToken.Split('.')[2], StringComparison.Ordinal));
        }

        // Attestation proofs are credentials too.
        Assert.DoesNotContain(lines, l => svids.Any(s => l.Contains(s.Split('.')[2], StringComparison.Ordinal)));
        Assert.Contains(lines, l => l.Contains("\"credential.revoked\"", StringComparison.Ordinal) && l.Contains("alice", StringComparison.Ordinal));

        // A clean stop seals the open segment; the chain then verifies up to a signed end.
        var auditPath = _broker.Host.AuditPath;
        await _broker.Host.DisposeAsync();
        var sealedLog = AuditVerifier.Verify([auditPath], publicKey);
        Assert.True(sealedLog.Ok, sealedLog.Problem?.ToString());
        Assert.True(sealedLog.Checkpoints >= 1);
        Assert.DoesNotContain(sealedLog.Notes, n => n.Contains("still open", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Issuance_stops_with_AUDIT_UNAVAILABLE_while_the_log_cannot_be_written_and_resumes_by_itself()
    {
        await _broker.Client.IssueCredentialAsync(_broker.Request(task: "before"));
        var auditPath = _broker.Host.AuditPath;
        var aside = auditPath + ".aside";

        // The storage disappears (unmounted, deleted): the open segment is gone and no folder to reopen in.
        Directory.Move(auditPath, aside);
        var refusal = await _broker.RefusedAsync(_broker.Request(task: "during"));
        Assert.Equal(StatusCode.Unavailable, refusal.Status);
        Assert.Equal("AUDIT_UNAVAILABLE", refusal.Reason);

        var health = new Grpc.Health.V1.Health.HealthClient(_broker.Channel);
        Assert.Equal(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.NotServing, (await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest())).Status);

        var revokeRefused = await Assert.ThrowsAsync<RpcException>(() => _broker.RevokeAsync("while audit is down", new Broker.V1.RevocationSelector { TaskId = "before" }));
        Assert.Equal(StatusCode.Unavailable, revokeRefused.StatusCode);

        // It comes back: no restart, no operator action on the broker.
        Directory.Move(aside, auditPath);
        var resumed = await _broker.Client.IssueCredentialAsync(_broker.Request(task: "after"));
        Assert.Contains(await _broker.AuditLinesAsync(), l => l.Contains(resumed.TokenId, StringComparison.Ordinal));
        await EventuallyAsync(async () => (await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest())).Status == Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving);

        // What was written before and after still verifies; the records of refused calls are not there.
        var result = AuditVerifier.Verify([auditPath]);
        Assert.True(result.Ok, result.Problem?.ToString());
        Assert.DoesNotContain(await _broker.AuditLinesAsync(), l => l.Contains("\"task_id\":\"during\"", StringComparison.Ordinal) && l.Contains("credential.issued", StringComparison.Ordinal));
    }

    private static async Task EventuallyAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "Condition not met within 10 s.");
            await Task.Delay(50);
        }
    }
}
