using Broker.Core.Secrets;
using Broker.Server.Tests.Infrastructure;
using Broker.Client;
using Broker.V1;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;
using CoreSelector = Broker.V1.RevocationSelector;

namespace Broker.Server.Tests.Secrets;

/// <summary>Downstream PostgreSQL logins through a real broker on real Redis and a real PostgreSQL.</summary>
[Collection(SecretsCollection.Name)]
public sealed class SecretIssuanceTests(RedisFixture redis, PostgresFixture postgres) : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);
    private readonly string _prefix = RedisFixture.NewPrefix();
    private BrokerScenario _broker = null!;

    public async Task InitializeAsync() => _broker = await SecretScenario.StartAsync(redis, postgres, _prefix);

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    private LeaseAdminService.LeaseAdminServiceClient Leases => new(_broker.Channel);

    [Fact]
    public async Task A_planning_login_reads_cannot_write_and_its_password_is_nowhere_at_rest()
    {
        var issued = await _broker.Client.IssueSecretAsync(_broker.SecretRequest("task-read"));

        var login = issued.Login();
        Assert.Equal(("orders-db", PostgresFixture.Reader, Phase.Planning), (issued.Engine, issued.Role, issued.Phase));
        await using (var session = await DatabaseSession.OpenAsync(login))
        {
            Assert.Equal(1, await DatabaseSession.CountOrdersAsync(session));
            Assert.Equal(Npgsql.PostgresErrorCodes.InsufficientPrivilege, await DatabaseSession.TryInsertAsync(session));
        }

        var audit = await _broker.AuditLinesAsync();
        var record = Assert.Single(audit, l => l.Contains("\"secret.issued\"", StringComparison.Ordinal));
        Assert.Contains($"\"lease_id\":\"{issued.LeaseId}\"", record, StringComparison.Ordinal);
        Assert.Contains("\"role\":\"orders_reader\"", record, StringComparison.Ordinal);
        Assert.All(audit, l => Assert.DoesNotContain(login.Password, l, StringComparison.Ordinal));
        Assert.DoesNotContain(login.Password, await RedisDumpAsync(), StringComparison.Ordinal);
        var listed = Assert.Single((await Leases.ListLeasesAsync(new ListLeasesRequest { TaskId = "task-read" }, _broker.As("alice", "responder"))).Leases);
        Assert.Equal((issued.LeaseId, login.Username), (listed.LeaseId, listed.Login));
    }

    public static TheoryData<string> Selectors => ["lease", "task", "phase", "agent", "trust_domain", "issued_before"];

    [Theory]
    [MemberData(nameof(Selectors))]
    public async Task Revoking_by_any_selector_kills_the_open_session_and_the_login(string selector)
    {
        var issued = await _broker.Client.IssueSecretAsync(_broker.SecretRequest("task-" + selector, svid: _broker.Svid("/agents/" + selector)));
        var login = issued.Login();
        await using var session = await DatabaseSession.OpenAsync(login);
        Assert.True(await DatabaseSession.IsAliveAsync(session));

        var revoked = await _broker.RevokeAsync("incident drill", selector switch
        {
            "lease" => new CoreSelector { TokenId = issued.LeaseId },
            "task" => new CoreSelector { TaskId = "task-" + selector },
            "phase" => new CoreSelector { TaskPhase = new TaskPhaseTarget { TaskId = "task-" + selector, Phase = Phase.Planning } },
            "agent" => new CoreSelector { Agent = issued.Subject },
            "trust_domain" => new CoreSelector { TrustDomain = "example.org" },
            _ => new CoreSelector { IssuedBefore = new IssuedBeforeTarget { Time = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow) } },
        });

        Assert.True(await DatabaseSession.EventuallyAsync(async () => !await DatabaseSession.IsAliveAsync(session), Bound), "the open session survived the revocation");
        Assert.NotNull(await DatabaseSession.TryLoginAsync(login));
        var ended = await EventuallyAuditAsync("\"secret.ended\"");
        Assert.Contains($"\"lease_id\":\"{issued.LeaseId}\"", ended, StringComparison.Ordinal);
        Assert.Contains("\"reason\":\"revoked\"", ended, StringComparison.Ordinal);
        Assert.Contains($"\"revocation_id\":\"{revoked.Revocations.Single().Id}\"", ended, StringComparison.Ordinal);

        // The record goes after the audit: a crash between the two re-ends (idempotently) rather than losing the record.
        Assert.True(await DatabaseSession.EventuallyAsync(async () => (await Leases.ListLeasesAsync(new ListLeasesRequest(), _broker.As("alice", "responder"))).Leases.Count == 0, Bound));
    }

    [Fact]
    public async Task Ending_the_task_kills_its_sessions()
    {
        var issued = await _broker.Client.IssueSecretAsync(_broker.SecretRequest("task-end"));
        await using var session = await DatabaseSession.OpenAsync(issued.Login());

        await _broker.Client.EndTaskAsync(new Broker.V1.EndTaskRequest { TaskId = "task-end", Attestation = new AttestationProof { JwtSvid = _broker.Svid() } });

        Assert.True(await DatabaseSession.EventuallyAsync(async () => !await DatabaseSession.IsAliveAsync(session), Bound));
        Assert.NotNull(await DatabaseSession.TryLoginAsync(issued.Login()));
        Assert.Equal("TASK_ENDED", (await RefusedAsync(_broker.SecretRequest("task-end"))).Reason);
    }

    [Fact]
    public async Task Moving_to_execution_ends_the_planning_login()
    {
        var planning = await _broker.Client.IssueSecretAsync(_broker.SecretRequest("task-move"));
        await using var session = await DatabaseSession.OpenAsync(planning.Login());

        await _broker.Client.IssueCredentialAsync(_broker.Request(task: "task-move", phase: Phase.Execution));

        Assert.True(await DatabaseSession.EventuallyAsync(async () => !await DatabaseSession.IsAliveAsync(session), Bound));
    }

    [Fact]
    public async Task A_gated_write_login_waits_for_approval_and_then_can_write()
    {
        await _broker.Client.IssueSecretAsync(_broker.SecretRequest("task-gated"));
        var asked = await _broker.Client.IssueSecretAsync(_broker.SecretRequest("task-gated", Phase.Execution, PostgresFixture.Writer));
        Assert.NotNull(asked.Pending);
        Assert.Null(asked.Credential);
        Assert.Equal(["secret:orders-db#orders_writer"], asked.Pending.GatedScopes);

        var approvals = new ApprovalAdminService.ApprovalAdminServiceClient(_broker.Channel);
        await approvals.ApproveAsync(new ApproveRequest { ApprovalId = asked.Pending.ApprovalId }, _broker.As("dana", "approver", "dba"));
        using var wait = _broker.Client.WaitForApproval(new WaitForApprovalRequest { ApprovalId = asked.Pending.ApprovalId, Attestation = new AttestationProof { JwtSvid = _broker.Svid() } });
        ApprovalUpdate? last = null;
        await foreach (var update in wait.ResponseStream.ReadAllAsync())
        {
            last = update;
        }

        Assert.Equal(ApprovalState.Consumed, last!.State);
        Assert.Equal(asked.Pending.ApprovalId, last.Secret.ApprovalId);
        await using var session = await DatabaseSession.OpenAsync(last.Secret.Login());
        Assert.Null(await DatabaseSession.TryInsertAsync(session));
    }

    [Fact]
    public async Task PostgreSQL_down_is_unavailable_with_a_reason_and_issues_nothing()
    {
        var before = await postgres.BrokerLoginsAsync();
        await postgres.Server.StopAsync();
        BrokerRefusal refusal;
        try
        {
            refusal = await RefusedAsync(_broker.SecretRequest("task-down"));
        }
        finally
        {
            await postgres.Server.RestartAsync();
        }

        Assert.Equal((StatusCode.Unavailable, SecretErrors.SecretEngineUnavailable), (refusal.Status, refusal.Reason));
        Assert.Contains("orders-db", refusal.Message, StringComparison.Ordinal);
        Assert.Empty((await Leases.ListLeasesAsync(new ListLeasesRequest(), _broker.As("alice", "responder"))).Leases);
        Assert.Equal(before, await postgres.BrokerLoginsAsync());
        Assert.Contains(await _broker.AuditLinesAsync(), l => l.Contains("\"secret.refused\"", StringComparison.Ordinal) && l.Contains(SecretErrors.SecretEngineUnavailable, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Two_nodes_racing_to_end_a_lease_end_it_once()
    {
        await using var peer = await _broker.StartPeerAsync(redis.Server.Configuration, _prefix, o => o with { Settings = SecretScenario.FastSweep });
        var issued = await _broker.Client.IssueSecretAsync(_broker.SecretRequest("task-race"));
        var lease = (await _broker.Host.Services.GetRequiredService<ILeaseStore>().GetAsync(issued.LeaseId, default))!;

        var a = _broker.Host.Services.GetRequiredService<SecretLeases>();
        var b = peer.Services.GetRequiredService<SecretLeases>();
        var attempts = Enumerable.Range(0, 8).Select(i => (i % 2 == 0 ? a : b).EndAsync(lease, LeaseEnd.Expired, lease.ExpiresAt, default));
        var won = await Task.WhenAll(attempts);

        Assert.Equal(1, won.Count(w => w));
        Assert.NotNull(await DatabaseSession.TryLoginAsync(issued.Login()));
        var ended = (await _broker.AuditLinesAsync()).Concat(await AuditLinesAsync(peer.AuditPath)).Count(l => l.Contains("\"secret.ended\"", StringComparison.Ordinal));
        Assert.Equal(1, ended);
    }

    [Fact]
    public async Task A_lease_whose_node_is_gone_is_ended_by_another_node_at_expiry()
    {
        var peer = await _broker.StartPeerAsync(redis.Server.Configuration, _prefix, o => o with { Settings = SecretScenario.FastSweep });
        IssueSecretResponse issued;
        using (var channel = peer.CreateChannel())
        {
            issued = await new CredentialService.CredentialServiceClient(channel).IssueSecretAsync(_broker.SecretRequest("task-orphan", ttl: TimeSpan.FromSeconds(2)));
        }

        // The issuing node stops and never cleans up; only the record in Redis remains.
        await using var session = await DatabaseSession.OpenAsync(issued.Login());
        await peer.DisposeAsync();

        Assert.True(await DatabaseSession.EventuallyAsync(async () => !await DatabaseSession.IsAliveAsync(session), Bound), "the expired lease's session survived");
        Assert.True(await DatabaseSession.EventuallyAsync(async () => await postgres.Server.ScalarAsync<long>("postgres", $"SELECT count(*) FROM pg_roles WHERE rolname = '{issued.Credential.Database.Username}'") == 0, Bound));
        Assert.Contains("\"reason\":\"expired\"", await EventuallyAuditAsync("\"secret.ended\""), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_node_killed_after_issuing_leaves_no_orphan_login_once_another_node_acts()
    {
        var work = Directory.CreateTempSubdirectory("broker-secret-kill-").FullName;
        var checkpoint = Path.Combine(work, "audit-checkpoint.pem");
        using (var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256))
        {
            await File.WriteAllTextAsync(checkpoint, key.ExportPkcs8PrivateKeyPem());
        }

        var node = await BrokerNodeProcess.StartAsync(
            "node-k",
            Path.Combine(work, "k"),
            new Dictionary<string, string>
            {
                ["Broker:Issuer"] = _broker.Host.Issuer,
                ["Broker:Audience"] = BrokerScenario.Audience,
                ["Broker:PolicyPath"] = _broker.PolicyPath,
                ["Broker:AuditPath"] = Path.Combine(work, "k", "audit"),
                ["Broker:NodeId"] = "node-k",
                ["Broker:Audit:CheckpointKeyPath"] = checkpoint,
                ["Broker:Redis:Configuration"] = redis.Server.Configuration,
                ["Broker:Redis:KeyPrefix"] = _prefix,
                ["Broker:Signing:Keys:0:Path"] = _broker.SigningKeyFile,
                ["Broker:Operators:Authority"] = _broker.Operators.Issuer,
            },
            grpcPort: Broker.Testing.RedisServer.FreePort(),
            httpPort: Broker.Testing.RedisServer.FreePort(),
            timeout: TimeSpan.FromSeconds(90));
        IssueSecretResponse issued;
        try
        {
            issued = await new CredentialService.CredentialServiceClient(node.Channel).IssueSecretAsync(_broker.SecretRequest("task-killed"));
        }
        finally
        {
            await node.DisposeAsync(); // SIGKILL: no shutdown code runs
        }

        await using var session = await DatabaseSession.OpenAsync(issued.Login());
        Assert.True(await DatabaseSession.IsAliveAsync(session), "the login should outlive its node until something ends it");

        await _broker.RevokeAsync("the issuing node died", new CoreSelector { TaskId = "task-killed" });

        Assert.True(await DatabaseSession.EventuallyAsync(async () => !await DatabaseSession.IsAliveAsync(session), Bound), "the dead node's session survived");
        Assert.True(await DatabaseSession.EventuallyAsync(async () => await postgres.Server.ScalarAsync<long>("postgres", $"SELECT count(*) FROM pg_roles WHERE rolname = '{issued.Credential.Database.Username}'") == 0, Bound), "the dead node's login was not dropped");
    }

    private async Task<BrokerRefusal> RefusedAsync(IssueSecretRequest request)
    {
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await _broker.Client.IssueSecretAsync(request));
        return BrokerRefusal.From(ex);
    }

    private async Task<string> EventuallyAuditAsync(string fragment)
    {
        string? found = null;
        Assert.True(await DatabaseSession.EventuallyAsync(async () => (found = (await _broker.AuditLinesAsync()).FirstOrDefault(l => l.Contains(fragment, StringComparison.Ordinal))) is not null, Bound), $"no audit record with {fragment}");
        return found!;
    }

    private static async Task<string[]> AuditLinesAsync(string auditPath)
    {
        var lines = new List<string>();
        foreach (var segment in Broker.Core.Audit.AuditFiles.All(auditPath))
        {
            await using var stream = new FileStream(segment.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            lines.AddRange((await reader.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }

        return [.. lines];
    }

    // Everything this broker keeps in Redis, as text.
    private async Task<string> RedisDumpAsync()
    {
        var server = redis.Connection.GetServer(redis.Connection.GetEndPoints()[0]);
        var db = redis.Connection.GetDatabase();
        var text = new System.Text.StringBuilder();
        await foreach (var key in server.KeysAsync(pattern: _prefix + "*"))
        {
            text.Append(key).Append(' ');
            switch (await db.KeyTypeAsync(key))
            {
                case RedisType.Hash:
                    foreach (var entry in await db.HashGetAllAsync(key))
                    {
                        text.Append(entry.Name).Append('=').Append(entry.Value).Append(' ');
                    }

                    break;
                case RedisType.String:
                    text.Append(await db.StringGetAsync(key));
                    break;
                case RedisType.Stream:
                    foreach (var entry in await db.StreamRangeAsync(key))
                    {
                        text.AppendJoin(' ', entry.Values.Select(v => v.Value.ToString()));
                    }

                    break;
                case RedisType.SortedSet:
                    text.AppendJoin(' ', await db.SortedSetRangeByRankAsync(key));
                    break;
            }

            text.AppendLine();
        }

        return text.ToString();
    }
}

/// <summary>A policy granting a role PostgreSQL does not have.</summary>
[Collection(SecretsCollection.Name)]
public sealed class SecretMissingRoleTests(RedisFixture redis, PostgresFixture postgres)
{
    [Fact]
    public async Task A_role_missing_on_the_server_is_refused_clearly_and_health_says_so()
    {
        await using var broker = await SecretScenario.StartAsync(redis, postgres, RedisFixture.NewPrefix(), readerRole: "orders_auditor");

        var ex = await Assert.ThrowsAsync<RpcException>(async () => await broker.Client.IssueSecretAsync(broker.SecretRequest("task-missing", role: "orders_auditor")));

        var refusal = BrokerRefusal.From(ex);
        Assert.Equal((StatusCode.FailedPrecondition, SecretErrors.SecretRoleMissing), (refusal.Status, refusal.Reason));
        Assert.Contains("'orders_auditor'", refusal.Message, StringComparison.Ordinal);
        using var http = new HttpClient();
        using var answer = await http.GetAsync(broker.Host.HttpAddress + "/healthz");
        var health = await answer.Content.ReadAsStringAsync();
        Assert.Contains("\"secrets\":\"Degraded\"", health, StringComparison.Ordinal);
    }
}
