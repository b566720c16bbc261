using System.Text.Json;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Broker.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using static Broker.Server.Tests.Delegation.DelegationScenario;

namespace Broker.Server.Tests.Delegation;

/// <summary>
/// ExchangeCredential on two real nodes sharing one real Redis: a sub-agent exchanges a
/// planner's token for its own, the chain is in the token and the audit log, each delegation
/// check refuses with its own reason, and revoking an ancestor, the task or a delegating agent
/// at one node refuses the delegated token at the other within the revocation bound.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class DelegationTests(RedisFixture redis) : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);
    private readonly string _prefix = RedisFixture.NewPrefix();
    private BrokerScenario _a = null!;
    private BrokerTestHost _b = null!;
    private GrpcChannel _bChannel = null!;

    private RevocationService.RevocationServiceClient IntrospectB => new(_bChannel);

    public async Task InitializeAsync()
    {
        _a = await BrokerScenario.StartAsync(redis.Server.Configuration, redisPrefix: _prefix, policy: Policy);
        _b = await _a.StartPeerAsync(redis.Server.Configuration, _prefix);
        _bChannel = _b.CreateChannel();
    }

    public async Task DisposeAsync()
    {
        _bChannel.Dispose();
        await _b.DisposeAsync();
        await _a.DisposeAsync();
    }

    private async Task<IssueCredentialResponse> PlannerTokenAsync(string task, Phase phase = Phase.Planning, params string[] scopes) =>
        await _a.Client.IssueCredentialAsync(_a.Request(_a.Svid(Planner), task, phase, scopes.Length == 0 ? ["repo:read", "tickets:read"] : scopes));

    [Fact]
    public async Task A_sub_agent_gets_a_narrower_token_for_the_same_task_with_the_act_chain_and_an_audit_record()
    {
        var parent = await PlannerTokenAsync("deleg-1");

        var delegated = await _a.Client.ExchangeCredentialAsync(Exchange(_a, parent.AccessToken, SubA, scopes: "repo:read"));

        var token = delegated.Credential;
        Assert.Equal(["repo:read"], token.GrantedScopes);
        Assert.Equal(Phase.Planning, token.Phase);
        Assert.True(token.ExpiresAt.ToDateTimeOffset() <= parent.ExpiresAt.ToDateTimeOffset());
        Assert.Equal("deleg-1", delegated.TaskId);
        Assert.Equal(parent.TokenId, delegated.ParentTokenId);
        Assert.Equal(1, delegated.Depth);
        Assert.Equal([_a.Trust.SpiffeId(Planner), _a.Trust.SpiffeId(SubA)], delegated.Chain);

        var claims = Payload(token.AccessToken);
        Assert.Equal(_a.Trust.SpiffeId(Planner), claims.GetProperty("sub").GetString());
        Assert.Equal(_a.Trust.SpiffeId(SubA), claims.GetProperty("client_id").GetString());
        Assert.Equal([_a.Trust.SpiffeId(SubA)], Actors(claims));
        Assert.Equal([parent.TokenId], claims.GetProperty("ancestor_jti").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("deleg-1", claims.GetProperty("task").GetString());

        // Any node's own token validation accepts it.
        Assert.True((await IntrospectB.IntrospectAsync(new IntrospectRequest { Token = token.AccessToken })).Active);

        var record = (await _a.AuditLinesAsync()).Select(l => JsonDocument.Parse(l).RootElement).Single(e => e.GetProperty("type").GetString() == "delegation.issued");
        Assert.Equal(2400, record.GetProperty("event_id").GetInt32());
        Assert.Equal(token.TokenId, record.GetProperty("token_id").GetString());
        Assert.Equal(parent.TokenId, record.GetProperty("parent_token_id").GetString());
        Assert.Equal(_a.Trust.SpiffeId(SubA), record.GetProperty("subject").GetString());
        Assert.Equal(_a.Trust.SpiffeId(Planner), record.GetProperty("actor").GetString());
        Assert.Equal(1, record.GetProperty("depth").GetInt32());
        Assert.Equal(delegated.Chain, record.GetProperty("chain").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task The_dotnet_sdk_exchanges_with_the_sub_agents_own_proof_and_surfaces_refusals_with_their_reason()
    {
        var parent = await PlannerTokenAsync("deleg-sdk");
        var subAgent = new Broker.Client.BrokerAgentClient(_a.Channel, new Broker.Client.StaticJwtSvidSource(_a.Svid(SubA)));

        var delegated = await subAgent.ExchangeAsync(parent.AccessToken, ["tickets:read"]);

        Assert.Equal(["tickets:read"], delegated.Credential.GrantedScopes);
        Assert.Equal([_a.Trust.SpiffeId(SubA)], Actors(Payload(delegated.Credential.AccessToken)));
        var refused = await Assert.ThrowsAsync<Broker.Client.BrokerRefusalException>(() => subAgent.ExchangeAsync(parent.AccessToken, phase: Phase.Execution));
        Assert.Equal("PHASE_ESCALATION", refused.Refusal.Reason);
    }

    [Fact]
    public async Task A_depth_two_chain_nests_the_actors_and_a_third_hop_is_refused_by_the_depth_limit()
    {
        var root = await PlannerTokenAsync("deleg-chain");
        var first = await _a.Client.ExchangeCredentialAsync(Exchange(_a, root.AccessToken, SubA));

        // The second hop goes through the other node: any node validates a delegated subject token.
        var second = await new CredentialService.CredentialServiceClient(_bChannel).ExchangeCredentialAsync(Exchange(_a, first.Credential.AccessToken, SubB, scopes: "tickets:read"));

        Assert.Equal(2, second.Depth);
        Assert.Equal([_a.Trust.SpiffeId(Planner), _a.Trust.SpiffeId(SubA), _a.Trust.SpiffeId(SubB)], second.Chain);
        var claims = Payload(second.Credential.AccessToken);
        Assert.Equal(_a.Trust.SpiffeId(Planner), claims.GetProperty("sub").GetString());
        Assert.Equal([_a.Trust.SpiffeId(SubB), _a.Trust.SpiffeId(SubA)], Actors(claims));
        Assert.Equal([first.Credential.TokenId, root.TokenId], claims.GetProperty("ancestor_jti").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["tickets:read"], second.Credential.GrantedScopes);

        var third = await RefusedAsync(_a.Client, Exchange(_a, second.Credential.AccessToken, SubC));
        Assert.Equal(StatusCode.PermissionDenied, third.Status);
        Assert.Equal("DELEGATION_DEPTH_EXCEEDED", third.Reason);
        Assert.Equal("2", third.Metadata["max_delegation_depth"]);
        Assert.Contains(await _a.AuditLinesAsync(), l => l.Contains("\"delegation.refused\"", StringComparison.Ordinal) && l.Contains("DELEGATION_DEPTH_EXCEEDED", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_delegating_agents_rule_bounds_the_depth()
    {
        var shallow = await _a.Client.IssueCredentialAsync(_a.Request(_a.Svid("/shallow/one"), "deleg-shallow", Phase.Planning, "repo:read"));
        var first = await _a.Client.ExchangeCredentialAsync(Exchange(_a, shallow.AccessToken, SubA));
        Assert.Equal(1, first.Depth);

        // sub-agents may delegate to depth 2 themselves; the planner-side limit applies only to its own hop.
        var second = await _a.Client.ExchangeCredentialAsync(Exchange(_a, first.Credential.AccessToken, SubB));
        Assert.Equal(2, second.Depth);

        var refused = await RefusedAsync(_a.Client, Exchange(_a, shallow.AccessToken, "/agents/other"));
        Assert.Equal("DELEGATION_NOT_ALLOWED", refused.Reason);
    }

    [Theory]
    [InlineData("/agents/other", "DELEGATION_NOT_ALLOWED", StatusCode.PermissionDenied)]
    [InlineData("/loners/x", "DELEGATION_NOT_ALLOWED", StatusCode.PermissionDenied)]
    [InlineData("/nobody/x", "DELEGATION_NOT_ALLOWED", StatusCode.PermissionDenied)]
    public async Task A_sub_agent_outside_delegate_to_is_refused(string actor, string reason, StatusCode status)
    {
        var parent = await PlannerTokenAsync("deleg-outside");

        var refused = await RefusedAsync(_a.Client, Exchange(_a, parent.AccessToken, actor));

        Assert.Equal(status, refused.Status);
        Assert.Equal(reason, refused.Reason);
    }

    [Fact]
    public async Task An_agent_whose_rule_names_no_delegate_to_cannot_delegate()
    {
        var loner = await _a.Client.IssueCredentialAsync(_a.Request(_a.Svid("/loners/x"), "deleg-loner", Phase.Planning, "repo:read"));

        var refused = await RefusedAsync(_a.Client, Exchange(_a, loner.AccessToken, SubA));

        Assert.Equal("DELEGATION_NOT_ALLOWED", refused.Reason);
    }

    [Fact]
    public async Task Scopes_beyond_the_subject_token_are_refused_naming_them()
    {
        var parent = await PlannerTokenAsync("deleg-scope", Phase.Planning, "repo:read");

        var refused = await RefusedAsync(_a.Client, Exchange(_a, parent.AccessToken, SubA, scopes: ["repo:read", "tickets:read"]));

        Assert.Equal(StatusCode.PermissionDenied, refused.Status);
        Assert.Equal("SCOPE_NOT_SUBSET", refused.Reason);
        Assert.Equal("tickets:read", refused.Metadata["scopes"]);
    }

    [Fact]
    public async Task A_phase_more_privileged_than_the_subject_tokens_is_refused_and_a_lower_one_is_allowed()
    {
        var planning = await PlannerTokenAsync("deleg-phase");
        var escalation = await RefusedAsync(_a.Client, Exchange(_a, planning.AccessToken, SubA, Phase.Execution, "repo:read"));
        Assert.Equal("PHASE_ESCALATION", escalation.Reason);

        var execution = await PlannerTokenAsync("deleg-phase-2", Phase.Execution, "repo:read", "deploy:staging");
        var across = await RefusedAsync(_a.Client, Exchange(_a, execution.AccessToken, SubA, Phase.Recovery, "repo:read"));
        Assert.Equal("PHASE_ESCALATION", across.Reason);

        var lower = await _a.Client.ExchangeCredentialAsync(Exchange(_a, execution.AccessToken, SubA, Phase.Planning, "repo:read"));
        Assert.Equal(Phase.Planning, lower.Credential.Phase);

        // The lower-phase delegated token does not move the task out of execution: the owner's token stays valid.
        Assert.True((await IntrospectB.IntrospectAsync(new IntrospectRequest { Token = execution.AccessToken })).Active);
    }

    [Fact]
    public async Task The_sub_agents_own_rule_still_decides()
    {
        // deploy:staging is in the planner's execution token, and in the sub-agent's execution rule,
        // but the sub-agent's planning rule does not allow it.
        var execution = await PlannerTokenAsync("deleg-own-rule", Phase.Execution, "repo:read", "deploy:staging");

        var refused = await RefusedAsync(_a.Client, Exchange(_a, execution.AccessToken, SubA, Phase.Planning, "deploy:staging"));

        Assert.Equal("SCOPE_NOT_ALLOWED", refused.Reason);
    }

    [Fact]
    public async Task Scopes_the_sub_agents_rule_gates_behind_approval_are_refused_and_the_others_issued()
    {
        var parent = await PlannerTokenAsync("deleg-gated");

        var refused = await RefusedAsync(_a.Client, Exchange(_a, parent.AccessToken, "/gated/x", scopes: "tickets:read"));
        var ungated = await _a.Client.ExchangeCredentialAsync(Exchange(_a, parent.AccessToken, "/gated/x", scopes: "repo:read"));

        Assert.Equal(StatusCode.PermissionDenied, refused.Status);
        Assert.Equal("DELEGATION_APPROVAL_UNSUPPORTED", refused.Reason);
        Assert.Equal(["repo:read"], ungated.Credential.GrantedScopes);
    }

    [Fact]
    public async Task A_sender_constrained_subject_token_is_refused()
    {
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        var p = key.ExportParameters(false);
        var request = _a.Request(_a.Svid(Planner), "deleg-bound", Phase.Planning, "repo:read");
        request.PopPublicKeyJwk = $$"""{"kty":"EC","crv":"P-256","x":"{{System.Buffers.Text.Base64Url.EncodeToString(p.Q.X!)}}","y":"{{System.Buffers.Text.Base64Url.EncodeToString(p.Q.Y!)}}"}""";
        var bound = await _a.Client.IssueCredentialAsync(request);
        Assert.Equal("DPoP", bound.TokenType);

        var refused = await RefusedAsync(_a.Client, Exchange(_a, bound.AccessToken, SubA));

        Assert.Equal(StatusCode.InvalidArgument, refused.Status);
        Assert.Equal("SUBJECT_TOKEN_BOUND", refused.Reason);
    }

    [Fact]
    public async Task A_node_that_cannot_tell_whether_the_subject_token_is_revoked_refuses_the_exchange()
    {
        var parent = await PlannerTokenAsync("deleg-stale");
        await redis.Server.KillAsync();
        try
        {
            Broker.Client.BrokerRefusal? last = null;
            await Poll.UntilAsync(
                async () =>
                {
                    last = await RefusedAsync(_a.Client, Exchange(_a, parent.AccessToken, SubA));
                    return last.Reason == "REVOCATION_STATE_UNKNOWN";
                },
                "the exchange refused once the revocation feed is stale",
                Bound);
            Assert.Equal(StatusCode.Unavailable, last!.Status);
        }
        finally
        {
            await redis.Server.RestartAsync();
        }
    }

    [Fact]
    public async Task A_revoked_subject_token_is_refused()
    {
        var parent = await PlannerTokenAsync("deleg-revoked");
        await _a.RevokeAsync("contain", new Broker.V1.RevocationSelector { TokenId = parent.TokenId });

        var refused = await RefusedAsync(_a.Client, Exchange(_a, parent.AccessToken, SubA));

        Assert.Equal(StatusCode.FailedPrecondition, refused.Status);
        Assert.Equal("SUBJECT_TOKEN_REVOKED", refused.Reason);
        Assert.Contains(await _a.AuditLinesAsync(), l => l.Contains("\"delegation.refused\"", StringComparison.Ordinal) && l.Contains("SUBJECT_TOKEN_REVOKED", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_expired_subject_token_is_refused()
    {
        var request = _a.Request(_a.Svid(Planner), "deleg-expired", Phase.Planning, "repo:read");
        request.RequestedTtl = Duration.FromTimeSpan(TimeSpan.FromSeconds(1));
        var parent = await _a.Client.IssueCredentialAsync(request);
        var expiry = parent.ExpiresAt.ToDateTimeOffset();
        await Poll.UntilAsync(() => DateTimeOffset.UtcNow > expiry, "the subject token's expiry");

        var refused = await RefusedAsync(_a.Client, Exchange(_a, parent.AccessToken, SubA));

        Assert.Equal("SUBJECT_TOKEN_EXPIRED", refused.Reason);
    }

    [Theory]
    [InlineData("not-a-token")]
    [InlineData("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")]
    public async Task A_subject_token_this_broker_did_not_sign_is_refused(string token)
    {
        var refused = await RefusedAsync(_a.Client, Exchange(_a, token, SubA));

        Assert.Equal(StatusCode.InvalidArgument, refused.Status);
        Assert.Equal("SUBJECT_TOKEN_INVALID", refused.Reason);
    }

    [Fact]
    public async Task A_sub_agent_whose_proof_does_not_attest_is_refused()
    {
        var parent = await PlannerTokenAsync("deleg-attest");
        var request = Exchange(_a, parent.AccessToken, SubA);
        request.ActorAttestation = new AttestationProof { JwtSvid = _a.Trust.MintSvid(_a.Trust.SpiffeId(SubA), "spiffe://example.org/someone-else", DateTimeOffset.UtcNow) };

        var refused = await RefusedAsync(_a.Client, request);

        Assert.Equal(StatusCode.Unauthenticated, refused.Status);
        Assert.Equal("ATTESTATION_AUDIENCE_MISMATCH", refused.Reason);

        request.ActorAttestation = null;
        var missing = await RefusedAsync(_a.Client, request);
        Assert.Equal("ATTESTATION_MISSING", missing.Reason);
    }

    public static TheoryData<string> Cascades => ["parent token", "root token", "task", "delegating agent"];

    [Theory]
    [MemberData(nameof(Cascades))]
    public async Task Revoking_an_ancestor_the_task_or_an_agent_in_the_chain_refuses_the_delegated_token_at_another_node(string what)
    {
        var task = "deleg-cascade-" + what.Replace(' ', '-');
        var root = await PlannerTokenAsync(task);
        var first = await _a.Client.ExchangeCredentialAsync(Exchange(_a, root.AccessToken, SubA));
        var second = await _a.Client.ExchangeCredentialAsync(Exchange(_a, first.Credential.AccessToken, SubB));
        var token = second.Credential.AccessToken;
        Assert.True((await IntrospectB.IntrospectAsync(new IntrospectRequest { Token = token })).Active);

        await _a.RevokeAsync("contain", what switch
        {
            "parent token" => new Broker.V1.RevocationSelector { TokenId = first.Credential.TokenId },
            "task" => new Broker.V1.RevocationSelector { TaskId = task },
            "delegating agent" => new Broker.V1.RevocationSelector { Agent = _a.Trust.SpiffeId(SubA) },
            _ => new Broker.V1.RevocationSelector { TokenId = root.TokenId },
        });

        await Poll.UntilAsync(async () => await InactiveAtBAsync(token), $"the delegated token refused at node B after revoking the {what}", Bound);
        Assert.Equal("revoked", (await new RevocationService.RevocationServiceClient(_a.Channel).IntrospectAsync(new IntrospectRequest { Token = token })).InactiveReason);
        var again = await RefusedAsync(_a.Client, Exchange(_a, token, SubC));
        Assert.Equal("SUBJECT_TOKEN_REVOKED", again.Reason);
    }

    [Fact]
    public async Task When_the_task_leaves_the_phase_its_chain_started_in_a_lower_phase_delegated_token_goes_with_its_ancestors()
    {
        var execution = await PlannerTokenAsync("deleg-phase-move", Phase.Execution, "repo:read", "deploy:staging");
        var delegated = await _a.Client.ExchangeCredentialAsync(Exchange(_a, execution.AccessToken, SubA, Phase.Planning, "repo:read"));
        Assert.Equal("execution", Payload(delegated.Credential.AccessToken).GetProperty("ancestor_phase").GetString());

        // The owner moves the task back to planning: its execution tokens are revoked (task_phase).
        var planning = await PlannerTokenAsync("deleg-phase-move", Phase.Planning, "repo:read");

        await Poll.UntilAsync(async () => await InactiveAtBAsync(delegated.Credential.AccessToken), "the planning token exchanged from an execution token refused at node B", Bound);
        Assert.True((await IntrospectB.IntrospectAsync(new IntrospectRequest { Token = planning.AccessToken })).Active);
    }

    private async Task<bool> InactiveAtBAsync(string token)
    {
        try
        {
            return (await IntrospectB.IntrospectAsync(new IntrospectRequest { Token = token })).InactiveReason == "revoked";
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
        {
            return false;
        }
    }
}
