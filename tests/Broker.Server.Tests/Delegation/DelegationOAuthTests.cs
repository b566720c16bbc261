using System.Net;
using Broker.Server.Tests.Infrastructure;
using Broker.Server.Tests.OAuth;
using Broker.V1;
using static Broker.Server.Tests.Delegation.DelegationScenario;

namespace Broker.Server.Tests.Delegation;

/// <summary>
/// Delegation at <c>POST /oauth2/token</c> on a real node with real Redis, driven by a plain
/// form-encoded HTTP client: RFC 8693 token exchange with an access-token <c>subject_token</c>
/// and the sub-agent's JWT-SVID as <c>actor_token</c>, and each refusal as its RFC 6749 error.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class DelegationOAuthTests(RedisFixture redis) : IAsyncLifetime
{
    private const string AccessTokenType = "urn:ietf:params:oauth:token-type:access_token";
    private BrokerScenario _broker = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _broker = await BrokerScenario.StartAsync(redis.Server.Configuration, redisPrefix: RedisFixture.NewPrefix(), policy: Policy);
        _http = new HttpClient { BaseAddress = new Uri(_broker.Host.HttpAddress) };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _broker.DisposeAsync();
    }

    private Dictionary<string, string?> Exchange(string subjectToken, string actor, string? scope = null) => new()
    {
        ["grant_type"] = OAuthScenario.TokenExchange,
        ["subject_token"] = subjectToken,
        ["subject_token_type"] = AccessTokenType,
        ["actor_token"] = _broker.Svid(actor),
        ["actor_token_type"] = OAuthScenario.JwtType,
        ["scope"] = scope,
    };

    private Task<OAuthAnswer> TokenAsync(Dictionary<string, string?> form) => OAuthScenario.PostAsync(_http, "/oauth2/token", form, []);

    private async Task<IssueCredentialResponse> PlannerTokenAsync(string task, Phase phase = Phase.Planning, params string[] scopes) =>
        await _broker.Client.IssueCredentialAsync(_broker.Request(_broker.Svid(Planner), task, phase, scopes.Length == 0 ? ["repo:read", "tickets:read"] : scopes));

    [Fact]
    public async Task A_sub_agent_exchanges_the_agents_token_with_its_svid_as_actor_token_and_a_second_hop_nests_the_chain()
    {
        var root = await PlannerTokenAsync("oauth-deleg");

        var first = await TokenAsync(Exchange(root.AccessToken, SubA, "repo:read tickets:read"));

        Assert.Equal(HttpStatusCode.OK, first.Status);
        Assert.Equal("no-store", first.CacheControl);
        Assert.Equal(AccessTokenType, first["issued_token_type"]);
        Assert.Equal("Bearer", first["token_type"]);
        Assert.Equal("oauth-deleg", first["task_id"]);
        Assert.Equal("planning", first["phase"]);
        Assert.Equal(root.TokenId, first["parent_token_id"]);
        Assert.Equal(1, first.Body.GetProperty("delegation_depth").GetInt32());
        Assert.Equal([_broker.Trust.SpiffeId(Planner), _broker.Trust.SpiffeId(SubA)], first.Body.GetProperty("delegation_chain").EnumerateArray().Select(e => e.GetString()));

        var second = await TokenAsync(Exchange(first["access_token"]!, SubB, "tickets:read"));

        Assert.Equal(HttpStatusCode.OK, second.Status);
        Assert.Equal("tickets:read", second["scope"]);
        var claims = Payload(second["access_token"]!);
        Assert.Equal(_broker.Trust.SpiffeId(Planner), claims.GetProperty("sub").GetString());
        Assert.Equal([_broker.Trust.SpiffeId(SubB), _broker.Trust.SpiffeId(SubA)], Actors(claims));
        Assert.Equal([first["token_id"], root.TokenId], claims.GetProperty("ancestor_jti").EnumerateArray().Select(e => e.GetString()));
        Assert.True(claims.GetProperty("exp").GetInt64() <= root.ExpiresAt.Seconds);
    }

    [Fact]
    public async Task Without_scope_the_subject_tokens_scopes_are_kept_and_authorization_details_may_lower_the_phase()
    {
        var execution = await PlannerTokenAsync("oauth-deleg-phase", Phase.Execution, "repo:read", "deploy:staging");
        var form = Exchange(execution.AccessToken, SubA, "repo:read");
        form["authorization_details"] = OAuthScenario.Details("oauth-deleg-phase", "planning");

        var lowered = await TokenAsync(form);
        var same = await TokenAsync(Exchange(execution.AccessToken, SubA));

        Assert.Equal("planning", lowered["phase"]);
        Assert.Equal("execution", same["phase"]);
        Assert.Equal("repo:read deploy:staging", same["scope"]);
    }

    public static TheoryData<string, string, string> Refusals => new()
    {
        { "not allowed", "invalid_grant", "DELEGATION_NOT_ALLOWED" },
        { "depth", "invalid_grant", "DELEGATION_DEPTH_EXCEEDED" },
        { "scope", "invalid_scope", "SCOPE_NOT_SUBSET" },
        { "phase", "invalid_grant", "PHASE_ESCALATION" },
        { "audience", "invalid_target", "DELEGATION_AUDIENCE_MISMATCH" },
        { "task", "invalid_request", "TASK_ID_INVALID" },
        { "revoked", "invalid_grant", "SUBJECT_TOKEN_REVOKED" },
        { "not a token", "invalid_grant", "SUBJECT_TOKEN_INVALID" },
        { "actor attestation", "invalid_grant", "ATTESTATION_AUDIENCE_MISMATCH" },
        { "no actor", "invalid_request", "ATTESTATION_MISSING" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task Each_delegation_refusal_is_its_oauth_error_with_the_broker_reason(string what, string error, string reason)
    {
        var task = "oauth-refused-" + what.Replace(' ', '-');
        var root = await PlannerTokenAsync(task, Phase.Planning, "repo:read");
        var form = Exchange(root.AccessToken, SubA);
        switch (what)
        {
            case "not allowed":
                form = Exchange(root.AccessToken, "/agents/other");
                break;
            case "depth":
                var first = await TokenAsync(Exchange(root.AccessToken, SubA));
                var second = await TokenAsync(Exchange(first["access_token"]!, SubB));
                form = Exchange(second["access_token"]!, SubC);
                break;
            case "scope":
                form["scope"] = "repo:read tickets:read";
                break;
            case "phase":
                form["authorization_details"] = OAuthScenario.Details(task, "execution");
                break;
            case "audience":
                form["resource"] = "https://other.example.org";
                break;
            case "task":
                form["authorization_details"] = OAuthScenario.Details("another-task", "planning");
                break;
            case "revoked":
                await _broker.RevokeAsync("contain", new Broker.V1.RevocationSelector { TaskId = task });
                break;
            case "not a token":
                form["subject_token"] = _broker.Svid(Planner);
                break;
            case "actor attestation":
                form["actor_token"] = _broker.Trust.MintSvid(_broker.Trust.SpiffeId(SubA), "spiffe://example.org/someone-else", DateTimeOffset.UtcNow);
                break;
            case "no actor":
                form["actor_token"] = null;
                form["actor_token_type"] = null;
                break;
        }

        var answer = await TokenAsync(form);

        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal(error, answer.Error);
        Assert.Equal(reason, answer.Reason);
    }

    [Fact]
    public async Task An_actor_token_with_a_workload_proof_as_subject_token_is_refused_saying_what_delegation_needs()
    {
        var form = Exchange("x", SubA);
        form["subject_token"] = _broker.Svid(Planner);
        form["subject_token_type"] = OAuthScenario.JwtType;

        var answer = await TokenAsync(form);

        Assert.Equal("invalid_request", answer.Error);
        Assert.Equal("OAUTH_ACTOR_TOKEN_UNSUPPORTED", answer.Reason);
        Assert.Contains("access_token", answer["error_description"]);
    }
}
