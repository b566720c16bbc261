using System.Text.Json;
using Broker.Server.Tests.Infrastructure;

namespace Broker.Server.Tests.OAuth;

/// <summary>
/// A stock non-.NET OAuth client (oauth4webapi on Node.js, tests/interop/node) gets a token
/// from a real broker with a JWT-SVID, bound to its own DPoP key or not, has it introspected and
/// revokes it: no Broker SDK, only the standards the metadata names. The broker requires DPoP
/// nonces, so the DPoP client also goes through the use_dpop_nonce round trip.
/// </summary>
public sealed class NodeOAuthClientTests : IAsyncLifetime
{
    private OAuthScenario _oauth = null!;

    private BrokerScenario Broker => _oauth.Broker;

    public async Task InitializeAsync() => _oauth = await OAuthScenario.StartAsync(settings: new Dictionary<string, string?> { ["Broker:OAuth:Dpop:RequireNonce"] = "true" });

    public async Task DisposeAsync() => await _oauth.DisposeAsync();

    [Theory]
    [InlineData("token-exchange", false)]
    [InlineData("jwt-bearer", false)]
    [InlineData("token-exchange", true)]
    [InlineData("jwt-bearer", true)]
    public async Task A_node_agent_gets_uses_and_revokes_a_token_with_a_stock_oauth_client(string grant, bool dpop)
    {
        var result = await NodeOAuthClient.RunAsync(Environment(grant, dpop));

        var token = result.GetProperty("token");
        Assert.Equal(dpop ? "dpop" : "bearer", Text(token, "token_type"));
        Assert.Equal("urn:ietf:params:oauth:token-type:access_token", Text(token, "issued_token_type"));
        Assert.Equal("repo:read", Text(token, "scope"));
        Assert.Equal("planning", Text(token, "phase"));
        Assert.StartsWith("task_", Text(token, "task_id"), StringComparison.Ordinal);
        Assert.InRange(token.GetProperty("expires_in").GetInt32(), 1, 600);

        var introspection = result.GetProperty("introspection");
        Assert.True(introspection.GetProperty("active").GetBoolean());
        Assert.Equal("spiffe://example.org/agents/planner", Text(introspection, "sub"));
        Assert.Equal(Text(token, "token_id"), Text(introspection, "jti"));
        if (dpop)
        {
            // The key the Node client generated is the one the broker bound, after one nonce challenge.
            var jkt = Text(result.GetProperty("dpop"), "jkt");
            Assert.Equal(1, result.GetProperty("dpop").GetProperty("nonce_challenges").GetInt32());
            Assert.Equal("DPoP", Text(introspection, "token_type"));
            Assert.Equal(jkt, Text(introspection.GetProperty("cnf"), "jkt"));
        }
        else
        {
            Assert.Equal("Bearer", Text(introspection, "token_type"));
            Assert.Equal(JsonValueKind.Undefined, introspection.TryGetProperty("cnf", out var cnf) ? cnf.ValueKind : JsonValueKind.Undefined);
        }

        var after = result.GetProperty("after_revocation");
        Assert.False(after.GetProperty("active").GetBoolean());
        Assert.Equal("revoked", Text(after, "reason"));

        var lines = await Broker.AuditLinesAsync();
        var tokenId = Text(token, "token_id");
        Assert.Single(lines, l => l.Contains("\"credential.issued\"", StringComparison.Ordinal) && l.Contains(tokenId, StringComparison.Ordinal));
        var revoked = Assert.Single(lines, l => l.Contains("\"credential.revoked\"", StringComparison.Ordinal) && l.Contains(tokenId, StringComparison.Ordinal));
        Assert.Contains("\"actor\":\"agent:spiffe://example.org/agents/planner\"", revoked, StringComparison.Ordinal);
        Assert.Contains("interop check finished", revoked, StringComparison.Ordinal);
    }

    private Dictionary<string, string> Environment(string grant, bool dpop) => new()
    {
        ["BROKER_ISSUER"] = Broker.Host.Issuer,
        ["JWT_SVID"] = Broker.Svid(),
        ["BROKER_RESOURCE"] = BrokerScenario.ResourceAudience,
        ["RESOURCE_SERVER_TOKEN"] = Broker.Host.ResourceServerToken(),
        ["BROKER_GRANT"] = grant,
        ["BROKER_DPOP"] = dpop ? "1" : "0",
    };

    private static string Text(JsonElement element, string member) => element.GetProperty(member).GetString()!;
}
