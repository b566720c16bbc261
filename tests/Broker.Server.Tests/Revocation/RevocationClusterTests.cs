using Broker.Server.Tests.Infrastructure;
using Broker.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using StackExchange.Redis;

namespace Broker.Server.Tests.Revocation;

/// <summary>Three broker nodes sharing one real Redis: revocations reach every node, survive restarts, and fail closed.</summary>
[Collection(RedisCollection.Name)]
public sealed class RevocationClusterTests(RedisFixture redis) : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);
    private readonly string _prefix = RedisFixture.NewPrefix();
    private readonly List<(BrokerTestHost Host, GrpcChannel Channel)> _others = [];
    private BrokerScenario _a = null!;

    private RevocationService.RevocationServiceClient B => new(_others[0].Channel);

    private RevocationService.RevocationServiceClient C => new(_others[1].Channel);

    public async Task InitializeAsync()
    {
        _a = await BrokerScenario.StartAsync(redis.Server.Configuration, redisPrefix: _prefix);
        for (var i = 0; i < 2; i++)
        {
            var host = await StartNodeAsync();
            _others.Add((host, host.CreateChannel()));
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var (host, channel) in _others)
        {
            channel.Dispose();
            await host.DisposeAsync();
        }

        await _a.DisposeAsync();
    }

    [Fact]
    public async Task Task_revoked_at_one_node_is_refused_at_every_node()
    {
        var token = (await _a.Client.IssueCredentialAsync(_a.Request(task: "incident-1"))).AccessToken;
        Assert.True((await B.IntrospectAsync(new IntrospectRequest { Token = token })).Active);

        var revoked = await _a.RevokeAsync("suspicious tool chaining", new Broker.V1.RevocationSelector { TaskId = "incident-1" });

        Assert.Equal("operator:alice", revoked.Revocations.Single().Actor);
        Assert.Equal("revoked", (await new RevocationService.RevocationServiceClient(_a.Channel).IntrospectAsync(new IntrospectRequest { Token = token })).InactiveReason);
        await EventuallyInactiveAsync(B, token);
        await EventuallyInactiveAsync(C, token);
        var again = await _a.RefusedAsync(_a.Request(task: "incident-1"));
        Assert.Equal("TASK_ENDED", again.Reason);
    }

    /// <summary>
    /// A failover can drop the task record ("ended") written after the revocation waited for
    /// replicas. The revocation alone still ends the task at every node.
    /// </summary>
    [Fact]
    public async Task A_revoked_task_stays_ended_even_when_its_task_record_is_lost()
    {
        var token = (await _a.Client.IssueCredentialAsync(_a.Request(task: "lost-record"))).AccessToken;
        await _a.RevokeAsync("contain", new Broker.V1.RevocationSelector { TaskId = "lost-record" });
        var credentialsB = new CredentialService.CredentialServiceClient(_others[0].Channel);
        await EventuallyInactiveAsync(B, token);

        Assert.True(await redis.Connection.GetDatabase().KeyDeleteAsync(new Broker.Redis.RedisKeys(_prefix).Task("lost-record")));

        foreach (var client in new[] { _a.Client, credentialsB })
        {
            var refused = await Assert.ThrowsAsync<RpcException>(async () => await client.IssueCredentialAsync(_a.Request(task: "lost-record")));
            Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
            Assert.Equal("TASK_ENDED", Broker.Client.BrokerRefusal.From(refused).Reason);
        }

        // The refusal left no task record behind either.
        Assert.False(await redis.Connection.GetDatabase().KeyExistsAsync(new Broker.Redis.RedisKeys(_prefix).Task("lost-record")));
    }

    [Fact]
    public async Task Resource_server_with_the_sdk_on_a_third_node_refuses_a_token_revoked_at_the_first()
    {
        await using var api = await ResourceApi.StartAsync(_a.Host.Issuer, BrokerScenario.ResourceAudience, revocationAddress: _others[1].Host.GrpcAddress, resourceServerToken: _a.Operators.ResourceServerToken);
        using var http = new HttpClient();
        var token = (await _a.Client.IssueCredentialAsync(_a.Request(task: "sdk-task"))).AccessToken;
        await EventuallyAsync(async () => (await GetAsync(http, api, token)).StatusCode == System.Net.HttpStatusCode.OK);

        await _a.RevokeAsync("sdk propagation", new Broker.V1.RevocationSelector { TaskId = "sdk-task" });

        await EventuallyAsync(async () =>
        {
            using var response = await GetAsync(http, api, token);
            return response.StatusCode == System.Net.HttpStatusCode.Unauthorized
                && response.Headers.WwwAuthenticate.ToString().Contains("token revoked", StringComparison.Ordinal);
        });
    }

    private static async Task<HttpResponseMessage> GetAsync(HttpClient http, ResourceApi api, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, api.Address + "/whoami");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        return await http.SendAsync(request);
    }

    [Fact]
    public async Task Each_selector_revokes_what_it_names_and_nothing_else()
    {
        var byToken = await IssueAsync("sel-token");
        var keep = await IssueAsync("sel-keep", "/agents/keeper");
        var byAgent = await IssueAsync("sel-agent", "/agents/rogue");
        var byPhase = await IssueAsync("sel-phase", "/agents/phased");

        await _a.RevokeAsync(
            "selector coverage",
            new Broker.V1.RevocationSelector { TokenId = byToken.TokenId },
            new Broker.V1.RevocationSelector { Agent = "spiffe://example.org/agents/rogue" },
            new Broker.V1.RevocationSelector { TaskPhase = new TaskPhaseTarget { TaskId = "sel-phase", Phase = Phase.Planning } });

        await EventuallyInactiveAsync(B, byToken.AccessToken);
        await EventuallyInactiveAsync(B, byAgent.AccessToken);
        await EventuallyInactiveAsync(B, byPhase.AccessToken);
        Assert.True((await B.IntrospectAsync(new IntrospectRequest { Token = keep.AccessToken })).Active);
        await Task.Delay(1100); // a token minted in the revocation's own second counts as issued before it
        var fresh = await IssueAsync("sel-agent-2", "/agents/rogue");
        Assert.True((await new RevocationService.RevocationServiceClient(_a.Channel).IntrospectAsync(new IntrospectRequest { Token = fresh.AccessToken })).Active);
    }

    [Fact]
    public async Task Trust_domain_and_issued_before_revoke_everything_older()
    {
        var old = await IssueAsync("old-1");
        await _a.RevokeAsync("domain compromised", new Broker.V1.RevocationSelector { TrustDomain = "example.org" });
        await EventuallyInactiveAsync(C, old.AccessToken);

        var older = await IssueAsync("old-2", "/agents/second");
        await Task.Delay(1100); // iat has whole-second precision; the cut-off must fall after it
        await _a.RevokeAsync("rotate everything", new Broker.V1.RevocationSelector
        {
            IssuedBefore = new IssuedBeforeTarget { Time = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow) },
        });

        await EventuallyInactiveAsync(C, older.AccessToken);
    }

    [Fact]
    public async Task Moving_to_execution_revokes_planning_tokens_and_ending_the_task_revokes_the_rest()
    {
        var planning = await _a.Client.IssueCredentialAsync(_a.Request(task: "flow"));
        var execution = await _a.Client.IssueCredentialAsync(_a.Request(task: "flow", phase: Phase.Execution, scopes: ["deploy:staging"]));

        await EventuallyInactiveAsync(B, planning.AccessToken);
        Assert.True((await B.IntrospectAsync(new IntrospectRequest { Token = execution.AccessToken })).Active);

        await _a.Client.EndTaskAsync(new EndTaskRequest { TaskId = "flow", Attestation = new AttestationProof { JwtSvid = _a.Svid() } });
        await EventuallyInactiveAsync(B, execution.AccessToken);
    }

    [Fact]
    public async Task Revocation_survives_a_redis_restart_and_nodes_started_afterwards_know_it()
    {
        var token = (await _a.Client.IssueCredentialAsync(_a.Request(task: "durable"))).AccessToken;
        await _a.RevokeAsync("durability", new Broker.V1.RevocationSelector { TaskId = "durable" });

        await redis.Server.StopAsync();
        await redis.Server.RestartAsync();
        await using var late = await StartNodeAsync();
        using var lateChannel = late.CreateChannel();

        await EventuallyInactiveAsync(new RevocationService.RevocationServiceClient(lateChannel), token);
        await EventuallyInactiveAsync(B, token);
    }

    [Fact]
    public async Task Node_catches_up_after_redis_restarts_mid_stream()
    {
        var token = (await _a.Client.IssueCredentialAsync(_a.Request(task: "catch-up"))).AccessToken;

        await redis.Server.KillAsync();
        await redis.Server.RestartAsync();
        await EventuallyAsync(async () =>
        {
            try
            {
                await _a.RevokeAsync("after restart", new Broker.V1.RevocationSelector { TaskId = "catch-up" });
                return true;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
            {
                return false;
            }
        });

        await EventuallyInactiveAsync(B, token);
        await EventuallyInactiveAsync(C, token);
    }

    private const Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus Serving = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving;
    private const Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus NotServing = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.NotServing;

    private async Task<Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus> HealthAsync(string service) =>
        (await new Grpc.Health.V1.Health.HealthClient(_a.Channel).CheckAsync(new Grpc.Health.V1.HealthCheckRequest { Service = service })).Status;

    [Fact]
    public async Task Redis_down_makes_every_node_refuse_issuance_and_introspection_after_the_bound()
    {
        var token = (await _a.Client.IssueCredentialAsync(_a.Request(task: "down"))).AccessToken;
        await redis.Server.KillAsync();
        try
        {
            await EventuallyAsync(async () =>
            {
                try
                {
                    await B.IntrospectAsync(new IntrospectRequest { Token = token });
                    return false;
                }
                catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
                {
                    return Broker.Client.BrokerRefusal.From(ex).Reason == "REVOCATION_STATE_UNKNOWN";
                }
            });
            var refusal = await _a.RefusedAsync(_a.Request(task: "down-2"));
            Assert.Equal(StatusCode.Unavailable, refusal.Status);

            // Health names the failing dependency; liveness stays up so nothing restarts the node.
            // Node A confirmed its feed on its own schedule, so its staleness bound may pass after B's.
            await EventuallyAsync(async () => await HealthAsync("broker.state") == NotServing);
            await EventuallyAsync(async () => await HealthAsync("broker.revocations") == NotServing);
            Assert.Equal(NotServing, await HealthAsync(""));
            Assert.Equal(Serving, await HealthAsync("broker.audit"));
            Assert.Equal(Serving, await HealthAsync("liveness"));
            using var http = new HttpClient();
            var metrics = PrometheusText.Parse(await http.GetStringAsync(new Uri(_a.Host.HttpAddress + "/metrics")));
            Assert.Equal(0, PrometheusText.Sum(metrics, "broker_revocation_current"));
            Assert.True(PrometheusText.Sum(metrics, "broker_revocation_staleness_seconds") > 2, "staleness passes the 2 s bound");
            Assert.True(PrometheusText.Sum(metrics, "broker_refusals_total", ("rpc_grpc_status", "UNAVAILABLE")) >= 1);
        }
        finally
        {
            await redis.Server.RestartAsync();
        }

        await EventuallyAsync(async () =>
        {
            try
            {
                return (await B.IntrospectAsync(new IntrospectRequest { Token = token })).Active;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
            {
                return false;
            }
        });
    }

    [Fact]
    public async Task Empty_redis_denies_everything_until_an_operator_restores_the_epoch()
    {
        var token = (await _a.Client.IssueCredentialAsync(_a.Request(task: "wiped"))).AccessToken;
        var db = redis.Connection.GetDatabase();
        var keys = redis.Connection.GetServer(redis.Connection.GetEndPoints()[0]).Keys(pattern: _prefix + "*").ToArray();
        Assert.Contains(keys, k => k.ToString().EndsWith("revocations:epoch", StringComparison.Ordinal));
        Assert.Equal(keys.Length, await db.KeyDeleteAsync(keys)); // what a restart without persistence leaves: nothing

        await EventuallyAsync(async () =>
        {
            try
            {
                await B.IntrospectAsync(new IntrospectRequest { Token = token });
                return false;
            }
            catch (RpcException ex) when (Broker.Client.BrokerRefusal.From(ex).Reason == "REVOCATION_STATE_LOST")
            {
                return true;
            }
        });
        // Node A notices on its own next read of the log (within the poll interval); until then a
        // token it issues predates the restore below, which revokes it.
        Broker.Client.BrokerRefusal? refused = null;
        await EventuallyAsync(async () =>
        {
            try
            {
                await _a.Client.IssueCredentialAsync(_a.Request(task: "wiped-2"));
                return false;
            }
            catch (RpcException ex)
            {
                refused = Broker.Client.BrokerRefusal.From(ex);
                return true;
            }
        });
        var revokeRefused = await Assert.ThrowsAsync<RpcException>(async () => await _a.RevokeAsync("x", new Broker.V1.RevocationSelector { TaskId = "wiped" }));

        Assert.Equal("REVOCATION_STATE_LOST", refused!.Reason);
        Assert.Equal("REVOCATION_STATE_LOST", Broker.Client.BrokerRefusal.From(revokeRefused).Reason);

        await _a.Admin.RestoreRevocationEpochAsync(new RestoreRevocationEpochRequest { Reason = "redis lost its data" }, _a.As("alice", "responder"));

        await EventuallyAsync(async () =>
        {
            try
            {
                return (await B.IntrospectAsync(new IntrospectRequest { Token = token })).InactiveReason == "revoked";
            }
            catch (RpcException)
            {
                return false;
            }
        });
        await Task.Delay(1100); // tokens minted in the restore's own second are covered by the cut-off
        var fresh = await _a.Client.IssueCredentialAsync(_a.Request(task: "after-restore"));
        Assert.True((await B.IntrospectAsync(new IntrospectRequest { Token = fresh.AccessToken })).Active);
    }

    public static TheoryData<string, StatusCode> BadOperators() => new()
    {
        { "wrong-role", StatusCode.PermissionDenied },
        { "wrong-audience", StatusCode.Unauthenticated },
        { "expired", StatusCode.Unauthenticated },
        { "agent-credential", StatusCode.Unauthenticated },
        { "none", StatusCode.Unauthenticated },
    };

    [Theory]
    [MemberData(nameof(BadOperators))]
    public async Task Revoke_refuses_callers_that_are_not_responders(string kind, StatusCode expected)
    {
        var agentToken = (await _a.Client.IssueCredentialAsync(_a.Request(task: "op-" + kind))).AccessToken;
        var headers = kind switch
        {
            "wrong-role" => _a.As("bob", "auditor"),
            "wrong-audience" => Bearer(_a.Operators.Token("bob", ["responder"], audience: "something-else")),
            "expired" => Bearer(_a.Operators.Token("bob", ["responder"], lifetime: TimeSpan.FromMinutes(5), now: DateTimeOffset.UtcNow.AddHours(-1))),
            "agent-credential" => Bearer(agentToken),
            _ => new Metadata(),
        };
        var request = new RevokeRequest { Reason = "nope", Selectors = { new Broker.V1.RevocationSelector { TaskId = "op-" + kind } } };

        var ex = await Assert.ThrowsAsync<RpcException>(async () => await _a.Admin.RevokeAsync(request, headers));

        Assert.Equal(expected, ex.StatusCode);
        Assert.True((await B.IntrospectAsync(new IntrospectRequest { Token = agentToken })).Active);
        if (kind != "none")
        {
            Assert.Contains(await _a.AuditLinesAsync(), l => l.Contains("\"operator.authentication_failed\"", StringComparison.Ordinal));
        }
    }

    public static TheoryData<string> BadSelectors() => ["empty", "future", "unknown-phase", "oversize", "no-reason", "bad-token-id"];

    [Theory]
    [MemberData(nameof(BadSelectors))]
    public async Task Malformed_revocations_are_invalid_and_write_nothing(string kind)
    {
        var request = new RevokeRequest { Reason = "test" };
        switch (kind)
        {
            case "empty":
                break;
            case "future":
                request.Selectors.Add(new Broker.V1.RevocationSelector { IssuedBefore = new IssuedBeforeTarget { Time = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddHours(1)) } });
                break;
            case "unknown-phase":
                request.Selectors.Add(new Broker.V1.RevocationSelector { TaskPhase = new TaskPhaseTarget { TaskId = "t", Phase = (Phase)42 } });
                break;
            case "oversize":
                request.Selectors.AddRange(Enumerable.Range(0, 101).Select(i => new Broker.V1.RevocationSelector { TaskId = "t" + i }));
                break;
            case "no-reason":
                request.Reason = "";
                request.Selectors.Add(new Broker.V1.RevocationSelector { TaskId = "t" });
                break;
            default:
                request.Selectors.Add(new Broker.V1.RevocationSelector { TokenId = "../../etc" });
                break;
        }

        var before = await redis.Connection.GetDatabase().StreamLengthAsync(_prefix + "revocations");
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await _a.Admin.RevokeAsync(request, _a.As("alice", "responder")));
        var after = await redis.Connection.GetDatabase().StreamLengthAsync(_prefix + "revocations");

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.NotNull(Broker.Client.BrokerRefusal.From(ex).Reason);
        Assert.Equal(before, after);
    }

    [Fact]
    public async Task Revoking_twice_is_harmless_and_listing_shows_actor_and_reason()
    {
        var token = await IssueAsync("twice");
        await _a.RevokeAsync("first", new Broker.V1.RevocationSelector { TokenId = token.TokenId });
        await _a.RevokeAsync("second", new Broker.V1.RevocationSelector { TokenId = token.TokenId });

        await EventuallyAsync(async () =>
        {
            var listed = await _a.Admin.ListRevocationsAsync(new ListRevocationsRequest(), _a.As("carol", "auditor"));
            return listed.Revocations.Count(r => r.Selector.TokenId == token.TokenId) == 2;
        });
        await EventuallyInactiveAsync(B, token.AccessToken);
        var audit = await _a.AuditLinesAsync();
        Assert.Contains(audit, l => l.Contains("\"credential.revoked\"", StringComparison.Ordinal) && l.Contains("operator:alice", StringComparison.Ordinal));
    }

    private async Task<IssueCredentialResponse> IssueAsync(string task, string agent = "/agents/planner") =>
        await _a.Client.IssueCredentialAsync(_a.Request(svid: _a.Svid(agent), task: task));

    private Task<BrokerTestHost> StartNodeAsync() => _a.StartPeerAsync(redis.Server.Configuration, _prefix);

    private static Metadata Bearer(string token) => new() { { "authorization", "Bearer " + token } };

    private static async Task EventuallyInactiveAsync(RevocationService.RevocationServiceClient node, string token) =>
        await EventuallyAsync(async () =>
        {
            try
            {
                return (await node.IntrospectAsync(new IntrospectRequest { Token = token })).InactiveReason == "revoked";
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
            {
                return false;
            }
        });

    private static async Task EventuallyAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (DateTime.UtcNow < deadline)
        {
            if (await condition())
            {
                return;
            }

            await Task.Delay(20);
        }

        Assert.Fail($"Condition not met within {Bound.TotalSeconds} s.");
    }
}
