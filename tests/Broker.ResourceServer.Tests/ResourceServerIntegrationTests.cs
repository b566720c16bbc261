using System.Diagnostics;
using System.Net;
using Broker.ResourceServer.Tests.Infrastructure;
using Broker.V1;
using WireSelector = Broker.V1.RevocationSelector;

namespace Broker.ResourceServer.Tests;

/// <summary>
/// A real broker node and a minimal API using the SDK, both on real Kestrel, talking real gRPC
/// and real HTTP. Waits are bounded polls; no sleep is an assertion.
/// </summary>
public sealed class ResourceServerIntegrationTests
{
    private static readonly TimeSpan PropagationBound = TimeSpan.FromSeconds(5);

    private static string? Challenge(HttpResponseMessage response) =>
        response.Headers.WwwAuthenticate.Select(h => h.ToString()).FirstOrDefault();

    private static void AssertRefused(HttpResponseMessage response, string description)
    {
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal($"Bearer error=\"invalid_token\", error_description=\"{description}\"", Challenge(response));
    }

    private static async Task<HttpResponseMessage> WaitForStatusAsync(ProtectedApi api, string token, HttpStatusCode status, TimeSpan bound, string because)
    {
        HttpResponseMessage? last = null;
        await Eventually.TrueAsync(
            async () =>
            {
                last?.Dispose();
                last = await api.GetAsync("/whoami", token);
                return last.StatusCode == status;
            },
            bound,
            because);
        return last!;
    }

    [Fact]
    public async Task A_valid_token_is_accepted_and_refused_once_revoked()
    {
        await using var broker = await BrokerNode.StartAsync();
        await using var api = await ProtectedApi.StartAsync(broker.ResourceServerTokenFile, broker.Issuer, broker.GrpcAddress);
        await api.WaitCurrentAsync();
        var token = await broker.IssueAsync("task-revoke-token");
        var bystander = await broker.IssueAsync("task-bystander");

        using (var ok = await api.GetAsync("/whoami", token.AccessToken))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            Assert.Equal("spiffe://example.org/agents/planner", await ok.Content.ReadAsStringAsync());
        }

        var revoked = Stopwatch.StartNew();
        await broker.RevokeAsync(new WireSelector { TokenId = token.TokenId });
        using var refused = await WaitForStatusAsync(api, token.AccessToken, HttpStatusCode.Unauthorized, PropagationBound, "the revoked token is refused");
        revoked.Stop();
        AssertRefused(refused, "token revoked");
        Assert.True(api.Revocations.EntriesApplied >= 1);

        using var other = await api.GetAsync("/whoami", bystander.AccessToken);
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
    }

    [Fact]
    public async Task Revoking_a_task_refuses_every_token_of_the_task()
    {
        await using var broker = await BrokerNode.StartAsync();
        await using var api = await ProtectedApi.StartAsync(broker.ResourceServerTokenFile, broker.Issuer, broker.GrpcAddress);
        await api.WaitCurrentAsync();
        var planning = await broker.IssueAsync("task-doomed");
        var execution = await broker.IssueAsync("task-doomed", Phase.Execution, scopes: "deploy:staging");

        await broker.RevokeAsync(new WireSelector { TaskId = "task-doomed" });

        using var first = await WaitForStatusAsync(api, planning.AccessToken, HttpStatusCode.Unauthorized, PropagationBound, "planning token of the revoked task is refused");
        AssertRefused(first, "token revoked");
        using var second = await api.GetAsync("/whoami", execution.AccessToken);
        AssertRefused(second, "token revoked");
    }

    [Fact]
    public async Task Scope_and_phase_endpoints_answer_403_for_the_wrong_scope_or_phase()
    {
        await using var broker = await BrokerNode.StartAsync();
        await using var api = await ProtectedApi.StartAsync(broker.ResourceServerTokenFile, broker.Issuer, broker.GrpcAddress);
        await api.WaitCurrentAsync();
        // Separate tasks: moving a task to execution ends its planning tokens.
        var planning = await broker.IssueAsync("task-scopes-planning", Phase.Planning, scopes: "repo:read");
        var staging = await broker.IssueAsync("task-scopes", Phase.Execution, scopes: ["repo:read", "deploy:staging"]);

        async Task<HttpStatusCode> Post(string path, string? token)
        {
            using var response = await api.PostAsync(path, token);
            return response.StatusCode;
        }

        // deploy:prod is not in the token (only deploy:staging): 403, not 401.
        Assert.Equal(HttpStatusCode.Forbidden, await Post("/deploy/prod", staging.AccessToken));
        Assert.Equal(HttpStatusCode.OK, await Post("/deploy/staging", staging.AccessToken));
        // Right scope missing and wrong phase.
        Assert.Equal(HttpStatusCode.Forbidden, await Post("/deploy/staging", planning.AccessToken));
        Assert.Equal(HttpStatusCode.Forbidden, await Post("/execute", planning.AccessToken));
        Assert.Equal(HttpStatusCode.OK, await Post("/execute", staging.AccessToken));
        // No token at all: 401.
        Assert.Equal(HttpStatusCode.Unauthorized, await Post("/deploy/prod", null));
        Assert.Equal(HttpStatusCode.Unauthorized, await Post("/execute", null));
    }

    [Fact]
    public async Task A_token_living_longer_than_the_brokers_maximum_lifetime_is_refused()
    {
        // Planning tokens live 10 minutes; a resource server told the broker's maximum is 5
        // minutes refuses them, since no revocation of theirs would be kept long enough.
        await using var broker = await BrokerNode.StartAsync();
        await using var strict = await ProtectedApi.StartAsync(broker.ResourceServerTokenFile, broker.Issuer, broker.GrpcAddress, o => o.MaxTokenLifetime = TimeSpan.FromMinutes(5));
        await using var matching = await ProtectedApi.StartAsync(broker.ResourceServerTokenFile, broker.Issuer, broker.GrpcAddress);
        await strict.WaitCurrentAsync();
        await matching.WaitCurrentAsync();
        var token = await broker.IssueAsync("task-long-lived");

        using var refused = await strict.GetAsync("/whoami", token.AccessToken);
        AssertRefused(refused, "token lifetime exceeds the broker's maximum");
        using var accepted = await matching.GetAsync("/whoami", token.AccessToken);
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
    }

    [Fact]
    public async Task A_token_for_another_audience_is_refused()
    {
        await using var broker = await BrokerNode.StartAsync();
        await using var api = await ProtectedApi.StartAsync(broker.ResourceServerTokenFile, broker.Issuer, broker.GrpcAddress, o => o.Audience = "https://other.example.org");
        await api.WaitCurrentAsync();
        var token = await broker.IssueAsync("task-audience");

        using var wrongAudience = await api.GetAsync("/whoami", token.AccessToken);
        Assert.Equal(HttpStatusCode.Unauthorized, wrongAudience.StatusCode);
        Assert.Contains("invalid_token", Challenge(wrongAudience), StringComparison.Ordinal);
    }

    [Fact]
    public async Task When_the_broker_stops_the_SDK_goes_stale_and_fails_closed_after_the_bound()
    {
        var broker = await BrokerNode.StartAsync();
        await using var brokerLifetime = broker;
        await using var api = await ProtectedApi.StartAsync(broker.ResourceServerTokenFile, broker.Issuer, broker.GrpcAddress);
        await api.WaitCurrentAsync();
        var token = await broker.IssueAsync("task-stale");
        using (var ok = await api.GetAsync("/whoami", token.AccessToken))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode); // discovery and JWKS are cached from here on
        }

        var stopped = Stopwatch.StartNew();
        await broker.StopAsync();
        using var refused = await WaitForStatusAsync(api, token.AccessToken, HttpStatusCode.Unauthorized, TimeSpan.FromSeconds(8), "stale state is refused");
        var elapsed = stopped.Elapsed;
        AssertRefused(refused, "revocation state unknown");
        Assert.False(api.Revocations.IsCurrent);

        // Not before the bound: the last confirmation was at most one heartbeat (500 ms) before the stop.
        Assert.True(elapsed >= TimeSpan.FromSeconds(1.2), $"refused after {elapsed}, before the 2 s bound could have passed");
        Assert.True(api.Revocations.Reconnects >= 1);
    }

    [Fact]
    public async Task Fail_open_keeps_accepting_when_stale_but_only_when_asked_for()
    {
        var broker = await BrokerNode.StartAsync();
        await using var brokerLifetime = broker;
        await using var api = await ProtectedApi.StartAsync(broker.ResourceServerTokenFile, broker.Issuer, broker.GrpcAddress, o => o.StaleStance = StaleStance.FailOpen);
        await api.WaitCurrentAsync();
        var token = await broker.IssueAsync("task-fail-open");
        using (var ok = await api.GetAsync("/whoami", token.AccessToken))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        await broker.StopAsync();
        await Eventually.TrueAsync(() => Task.FromResult(!api.Revocations.IsCurrent), TimeSpan.FromSeconds(8), "the SDK notices it is stale");
        using var stillOk = await api.GetAsync("/whoami", token.AccessToken);
        Assert.Equal(HttpStatusCode.OK, stillOk.StatusCode);
    }

    [Fact]
    public async Task After_a_reconnect_the_stream_resumes_keeping_entries_and_catching_up()
    {
        await using var broker = await BrokerNode.StartAsync();
        await using var relay = new TcpRelay(broker.GrpcPort);
        await using var api = await ProtectedApi.StartAsync(broker.ResourceServerTokenFile, broker.Issuer, relay.Address);
        await api.WaitCurrentAsync();
        var before = await broker.IssueAsync("task-before-cut");
        var during = await broker.IssueAsync("task-during-cut");
        var fine = await broker.IssueAsync("task-fine");

        var cursorAtRevoke = api.Revocations.Cursor;
        await broker.RevokeAsync(new WireSelector { TokenId = before.TokenId });
        using (var r = await WaitForStatusAsync(api, before.AccessToken, HttpStatusCode.Unauthorized, PropagationBound, "revoked before the cut"))
        {
            AssertRefused(r, "token revoked");
        }

        // A heartbeat after the revocation carries a cursor past it: resuming from there needs no reset.
        await Eventually.TrueAsync(() => Task.FromResult(api.Revocations.Cursor != cursorAtRevoke), TimeSpan.FromSeconds(5), "a heartbeat moves the cursor");
        var snapshots = api.Revocations.Snapshots;
        var (cursorBefore, epochBefore) = (api.Revocations.Cursor, api.Revocations.Epoch);
        relay.Sever();
        // Revoked while the SDK cannot hear the broker: it must catch up on reconnect.
        await broker.RevokeAsync(new WireSelector { TokenId = during.TokenId });
        await Eventually.TrueAsync(() => Task.FromResult(api.Revocations.Reconnects >= 1), TimeSpan.FromSeconds(5), "the SDK notices the cut and retries");
        relay.Restore();

        await Eventually.TrueAsync(() => Task.FromResult(api.Revocations.Snapshots > snapshots && api.Revocations.IsCurrent), TimeSpan.FromSeconds(10), "the SDK reconnects");
        Assert.True(api.Revocations.Resets == 0, $"resumed from its cursor, not rebuilt: cursor before {cursorBefore}, epoch before {epochBefore}, now {api.Revocations.Cursor} {api.Revocations.Epoch}");

        using var stillRevoked = await api.GetAsync("/whoami", before.AccessToken);
        AssertRefused(stillRevoked, "token revoked");
        using var caughtUp = await WaitForStatusAsync(api, during.AccessToken, HttpStatusCode.Unauthorized, PropagationBound, "revocation made during the cut is applied");
        AssertRefused(caughtUp, "token revoked");
        using var ok = await api.GetAsync("/whoami", fine.AccessToken);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task Until_the_first_snapshot_tokens_are_refused_as_state_unknown()
    {
        await using var broker = await BrokerNode.StartAsync();
        // Nothing listens on the relay's target until... never: the SDK cannot reach the stream at all.
        await using var relay = new TcpRelay(broker.GrpcPort);
        relay.Sever();
        await using var api = await ProtectedApi.StartAsync(broker.ResourceServerTokenFile, broker.Issuer, relay.Address);
        var token = await broker.IssueAsync("task-cold-start");

        using var refused = await api.GetAsync("/whoami", token.AccessToken);
        AssertRefused(refused, "revocation state unknown");

        relay.Restore();
        await api.WaitCurrentAsync();
        using var ok = await api.GetAsync("/whoami", token.AccessToken);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task Introspect_answers_active_then_revoked_for_non_dotnet_callers()
    {
        await using var broker = await BrokerNode.StartAsync();
        var token = await broker.IssueAsync("task-introspect");

        var active = await broker.Revocations.IntrospectAsync(new IntrospectRequest { Token = token.AccessToken });
        Assert.True(active.Active);
        Assert.Equal(token.TokenId, active.TokenId);
        Assert.Equal("task-introspect", active.TaskId);
        Assert.Equal(Phase.Planning, active.Phase);

        await broker.RevokeAsync(new WireSelector { TokenId = token.TokenId });
        var inactive = await broker.Revocations.IntrospectAsync(new IntrospectRequest { Token = token.AccessToken });
        Assert.False(inactive.Active);
        Assert.Equal("revoked", inactive.InactiveReason);
    }
}
