using System.Net;
using Broker.ResourceServer.Tests.Infrastructure;
using Broker.Testing;
using Broker.V1;
using WireSelector = Broker.V1.RevocationSelector;

namespace Broker.ResourceServer.Tests;

/// <summary>
/// A depth-2 delegated token (planner, then sub-agent a, then sub-agent b) at a minimal API
/// using the SDK, against a real broker node on real Kestrel: accepted while its chain stands,
/// and refused within the revocation bound once any ancestor token, the task or any agent of the
/// chain is revoked, while tokens outside what was revoked stay accepted.
/// </summary>
public sealed class DelegationCascadeTests
{
    private static readonly TimeSpan PropagationBound = TimeSpan.FromSeconds(5);

    private static string Policy(string jwksPath) => BrokerNode.Policy(jwksPath).Replace(
        "    match: spiffe://example.org/agents/*\n",
        "    match: spiffe://example.org/agents/*\n    delegate_to: [spiffe://example.org/sub/*]\n    max_delegation_depth: 2\n",
        StringComparison.Ordinal) + $"""

          - name: subagents
            match: spiffe://example.org/sub/*
            delegate_to: [spiffe://example.org/sub/*]
            max_delegation_depth: 2
            phases:
              planning:
                scopes: [repo:read, tickets:read]
                audiences: [{BrokerNode.ApiAudience}]
                max_ttl: 10m
        """;

    public static TheoryData<string> Revoked => ["parent token", "root token", "task", "delegating agent", "root agent"];

    [Theory]
    [MemberData(nameof(Revoked))]
    public async Task Revoking_what_a_delegated_token_descends_from_refuses_it_at_the_resource_server(string what)
    {
        await using var broker = await BrokerNode.StartAsync(policy: Policy);
        await using var api = await ProtectedApi.StartAsync(broker.ResourceServerTokenFile, broker.Issuer, broker.GrpcAddress);
        await api.WaitCurrentAsync();
        var task = "task-cascade";
        var root = await broker.IssueAsync(task);
        var first = await broker.Credentials.ExchangeCredentialAsync(Exchange(broker, root.AccessToken, "/sub/a"));
        var second = await broker.Credentials.ExchangeCredentialAsync(Exchange(broker, first.Credential.AccessToken, "/sub/b"));
        var token = second.Credential.AccessToken;
        var bystander = await broker.IssueAsync("task-bystander");

        using (var ok = await api.GetAsync("/whoami", token))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);

            // The token is the task owner's, held by the sub-agent (act).
            Assert.Equal("spiffe://example.org/agents/planner", await ok.Content.ReadAsStringAsync());
        }

        await broker.RevokeAsync(what switch
        {
            "parent token" => new WireSelector { TokenId = first.Credential.TokenId },
            "root token" => new WireSelector { TokenId = root.TokenId },
            "task" => new WireSelector { TaskId = task },
            "delegating agent" => new WireSelector { Agent = "spiffe://example.org/sub/a" },
            _ => new WireSelector { Agent = "spiffe://example.org/agents/planner" },
        });

        var refused = false;
        await Poll.UntilAsync(
            async () =>
            {
                using var response = await api.GetAsync("/whoami", token);
                refused = response.StatusCode == HttpStatusCode.Unauthorized
                    && response.Headers.WwwAuthenticate.ToString().Contains("token revoked", StringComparison.Ordinal);
                return refused;
            },
            $"the delegated token refused by the SDK after revoking the {what}",
            PropagationBound);
        Assert.True(refused);

        // Revocation goes down the chain, never up it, nor sideways.
        using var other = await api.GetAsync("/whoami", bystander.AccessToken);
        Assert.Equal(what == "root agent" ? HttpStatusCode.Unauthorized : HttpStatusCode.OK, other.StatusCode);
        if (what is "parent token" or "delegating agent")
        {
            using var rootAnswer = await api.GetAsync("/whoami", root.AccessToken);
            Assert.Equal(HttpStatusCode.OK, rootAnswer.StatusCode);
        }
    }

    private static ExchangeCredentialRequest Exchange(BrokerNode broker, string subjectToken, string actor) => new()
    {
        SubjectToken = subjectToken,
        ActorAttestation = new AttestationProof { JwtSvid = broker.Svid(actor) },
    };
}
