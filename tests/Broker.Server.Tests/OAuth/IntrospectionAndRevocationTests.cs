using System.Net;
using System.Net.Http.Headers;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Broker.V1;

namespace Broker.Server.Tests.OAuth;

/// <summary>
/// RFC 7662 introspection and RFC 7009 revocation over real Kestrel with a plain HttpClient:
/// the same authentication, answers, revocations and audit records as the gRPC calls.
/// </summary>
public sealed class IntrospectionAndRevocationTests : IAsyncLifetime
{
    private const string ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

    private OAuthScenario _oauth = null!;

    private BrokerScenario Broker => _oauth.Broker;

    public async Task InitializeAsync() => _oauth = await OAuthScenario.StartAsync();

    public async Task DisposeAsync() => await _oauth.DisposeAsync();

    [Fact]
    public async Task A_resource_server_introspects_an_active_token_and_sees_what_the_grpc_call_says()
    {
        var token = await TokenAsync("task-in", "/agents/planner");

        var answer = await IntrospectAsync(token, Broker.Host.ResourceServerToken());
        var grpc = await new RevocationService.RevocationServiceClient(Broker.Channel).IntrospectAsync(new IntrospectRequest { Token = token });

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal("no-store", answer.CacheControl);
        Assert.True(answer.Body.GetProperty("active").GetBoolean());
        Assert.True(grpc.Active);
        Assert.Equal(grpc.TokenId, answer["jti"]);
        Assert.Equal(grpc.Subject, answer["sub"]);
        Assert.Equal("spiffe://example.org/agents/planner", answer["client_id"]);
        Assert.Equal(grpc.Audience, answer["aud"]);
        Assert.Equal(string.Join(' ', grpc.Scopes), answer["scope"]);
        Assert.Equal("task-in", answer["task_id"]);
        Assert.Equal("planning", answer["phase"]);
        Assert.Equal("Bearer", answer["token_type"]);
        Assert.Equal(Broker.Host.Issuer, answer["iss"]);
        Assert.Equal(grpc.ExpiresAt.ToDateTimeOffset().ToUnixTimeSeconds(), answer.Body.GetProperty("exp").GetInt64());
    }

    [Fact]
    public async Task An_inactive_token_says_only_that_and_why()
    {
        var answer = await IntrospectAsync("garbage", Broker.Host.ResourceServerToken());

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.False(answer.Body.GetProperty("active").GetBoolean());
        Assert.Equal("malformed", answer["broker_inactive_reason"]);
        Assert.Equal(["active", "broker_inactive_reason"], answer.Body.EnumerateObject().Select(p => p.Name));
    }

    [Fact]
    public async Task Introspection_without_a_resource_server_token_is_401_invalid_client()
    {
        var token = await TokenAsync("task-anon", "/agents/planner");

        var none = await IntrospectAsync(token, bearer: null);
        var operatorToken = await IntrospectAsync(token, Operator("alice", "responder"));
        var agentToken = await IntrospectAsync(token, bearer: token);

        foreach (var (answer, reason) in new[] { (none, "RESOURCE_SERVER_TOKEN_MISSING"), (operatorToken, "RESOURCE_SERVER_TOKEN_INVALID"), (agentToken, "RESOURCE_SERVER_TOKEN_INVALID") })
        {
            Assert.Equal(HttpStatusCode.Unauthorized, answer.Status);
            Assert.Equal("invalid_client", answer.Error);
            Assert.Equal(reason, answer.Reason);
            Assert.False(answer.Body.TryGetProperty("active", out _));
        }
    }

    [Fact]
    public async Task An_agent_revokes_its_own_token_with_its_proof_and_every_door_then_refuses_it()
    {
        var token = await TokenAsync("task-self", "/agents/planner");
        var jti = (string)TokenForger.PayloadOf(token)["jti"]!;

        var revoked = await RevokeAsync(token, ("client_assertion_type", ClientAssertionType), ("client_assertion", Broker.Svid()), ("reason", "task finished early"));

        Assert.Equal(HttpStatusCode.OK, revoked.Status);
        var answer = await IntrospectAsync(token, Broker.Host.ResourceServerToken());
        Assert.False(answer.Body.GetProperty("active").GetBoolean());
        Assert.Equal("revoked", answer["broker_inactive_reason"]);
        var grpc = await new RevocationService.RevocationServiceClient(Broker.Channel).IntrospectAsync(new IntrospectRequest { Token = token });
        Assert.Equal("revoked", grpc.InactiveReason);
        var record = Assert.Single(await Broker.AuditLinesAsync(), l => l.Contains("\"credential.revoked\"", StringComparison.Ordinal) && l.Contains(jti, StringComparison.Ordinal));
        Assert.Contains("\"actor\":\"agent:spiffe://example.org/agents/planner\"", record, StringComparison.Ordinal);
        Assert.Contains("task finished early", record, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_agent_cannot_revoke_another_workloads_token_and_the_attempt_is_audited()
    {
        var token = await TokenAsync("task-victim", "/agents/planner");
        var jti = (string)TokenForger.PayloadOf(token)["jti"]!;

        var answer = await RevokeAsync(token, ("client_assertion_type", ClientAssertionType), ("client_assertion", Broker.Svid("/agents/intruder")));

        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal("unauthorized_client", answer.Error);
        Assert.Equal("TOKEN_NOT_HELD", answer.Reason);
        Assert.True((await IntrospectAsync(token, Broker.Host.ResourceServerToken())).Body.GetProperty("active").GetBoolean());
        var lines = await Broker.AuditLinesAsync();
        Assert.DoesNotContain(lines, l => l.Contains("\"credential.revoked\"", StringComparison.Ordinal) && l.Contains(jti, StringComparison.Ordinal));
        var refused = Assert.Single(lines, l => l.Contains("\"revocation.refused\"", StringComparison.Ordinal));
        Assert.Contains("TOKEN_NOT_HELD", refused, StringComparison.Ordinal);
        Assert.Contains("agents/intruder", refused, StringComparison.Ordinal);
        Assert.Contains(jti, refused, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_responder_revokes_any_token_and_an_approver_is_refused()
    {
        var token = await TokenAsync("task-resp", "/agents/planner");

        var approver = await RevokeWithBearerAsync(token, Operator("bob", "approver"));
        Assert.Equal(HttpStatusCode.BadRequest, approver.Status);
        Assert.Equal("access_denied", approver.Error);
        Assert.Equal("OPERATOR_ROLE_MISSING", approver.Reason);
        Assert.True((await IntrospectAsync(token, Broker.Host.ResourceServerToken())).Body.GetProperty("active").GetBoolean());

        var forged = await RevokeWithBearerAsync(token, token);
        Assert.Equal(HttpStatusCode.Unauthorized, forged.Status);
        Assert.Equal("invalid_client", forged.Error);
        Assert.Equal("OPERATOR_UNAUTHENTICATED", forged.Reason);

        var responder = await RevokeWithBearerAsync(token, Operator("alice", "responder"));
        Assert.Equal(HttpStatusCode.OK, responder.Status);
        Assert.Equal("revoked", (await IntrospectAsync(token, Broker.Host.ResourceServerToken()))["broker_inactive_reason"]);
        Assert.Contains(await Broker.AuditLinesAsync(), l => l.Contains("\"credential.revoked\"", StringComparison.Ordinal) && l.Contains("\"actor\":\"operator:alice\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Revoking_what_is_not_a_live_broker_token_answers_200_and_writes_nothing()
    {
        var token = await TokenAsync("task-twice", "/agents/planner");
        var responder = Operator("alice", "responder");
        Assert.Equal(HttpStatusCode.OK, (await RevokeWithBearerAsync(token, responder)).Status);
        var before = (await Broker.Admin.ListRevocationsAsync(new ListRevocationsRequest(), Broker.As("alice", "responder"))).Revocations.Count;

        var again = await RevokeWithBearerAsync(token, responder);
        var garbage = await RevokeWithBearerAsync("not.a.token", responder);
        var forged = await RevokeWithBearerAsync(TokenForger.ZeroSignature(token), responder);

        Assert.All(new[] { again, garbage, forged }, a => Assert.Equal(HttpStatusCode.OK, a.Status));
        Assert.Equal(before, (await Broker.Admin.ListRevocationsAsync(new ListRevocationsRequest(), Broker.As("alice", "responder"))).Revocations.Count);
    }

    [Fact]
    public async Task Revocation_refuses_what_it_cannot_serve_with_rfc_6749_errors()
    {
        var token = await TokenAsync("task-bad", "/agents/planner");

        var noProof = await RevokeAsync(token);
        var noToken = await RevokeAsync(null, ("client_assertion_type", ClientAssertionType), ("client_assertion", Broker.Svid()));
        var refreshHint = await RevokeAsync(token, ("token_type_hint", "refresh_token"), ("client_assertion_type", ClientAssertionType), ("client_assertion", Broker.Svid()));
        var halfAssertion = await RevokeAsync(token, ("client_assertion", Broker.Svid()));
        var badProof = await RevokeAsync(token, ("client_assertion_type", ClientAssertionType), ("client_assertion", Broker.Trust.MintSvid(Broker.Trust.SpiffeId("/agents/planner"), BrokerScenario.Audience, DateTimeOffset.UtcNow.AddMinutes(-10), TimeSpan.FromMinutes(5))));

        Assert.Equal(("invalid_request", "ATTESTATION_MISSING"), (noProof.Error, noProof.Reason));
        Assert.Equal(("invalid_request", "OAUTH_REQUEST_MALFORMED"), (noToken.Error, noToken.Reason));
        Assert.Equal(("unsupported_token_type", "OAUTH_TOKEN_TYPE_UNSUPPORTED"), (refreshHint.Error, refreshHint.Reason));
        Assert.Equal((HttpStatusCode.Unauthorized, "invalid_client", "OAUTH_REQUEST_MALFORMED"), (halfAssertion.Status, halfAssertion.Error, halfAssertion.Reason));
        Assert.Equal(("invalid_grant", "ATTESTATION_EXPIRED"), (badProof.Error, badProof.Reason));
        Assert.True((await IntrospectAsync(token, Broker.Host.ResourceServerToken())).Body.GetProperty("active").GetBoolean());
        Assert.Contains(await Broker.AuditLinesAsync(), l => l.Contains("\"attestation.refused\"", StringComparison.Ordinal) && l.Contains("ATTESTATION_EXPIRED", StringComparison.Ordinal));
    }

    private string Operator(string name, string role) =>
        Broker.As(name, role).GetValue("authorization")!["Bearer ".Length..];

    private async Task<string> TokenAsync(string task, string workload)
    {
        var answer = await _oauth.TokenAsync(_oauth.Exchange(svid: Broker.Svid(workload), task: task));
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        return answer["access_token"]!;
    }

    private Task<OAuthAnswer> IntrospectAsync(string token, string? bearer) =>
        SendAsync("/oauth2/introspect", bearer, [("token", token)]);

    private Task<OAuthAnswer> RevokeAsync(string? token, params (string Name, string Value)[] more) =>
        SendAsync("/oauth2/revoke", null, token is null ? more : [("token", token), .. more]);

    private Task<OAuthAnswer> RevokeWithBearerAsync(string token, string bearer) =>
        SendAsync("/oauth2/revoke", bearer, [("token", token)]);

    private async Task<OAuthAnswer> SendAsync(string path, string? bearer, IEnumerable<(string Name, string Value)> form)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path)
        {
            Content = new FormUrlEncodedContent(form.Select(p => new KeyValuePair<string, string>(p.Name, p.Value))),
        };
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        using var response = await _oauth.Http.SendAsync(request);
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            Assert.Contains(response.Headers.WwwAuthenticate, h => h.Scheme == "Bearer");
        }

        return await OAuthAnswer.ReadAsync(response);
    }
}
