using System.Text.Json;
using Broker.Server.Tests.Infrastructure;

namespace Broker.Server.Tests.OAuth;

/// <summary>
/// A stock non-.NET OAuth client (oauth4webapi on Node.js, tests/interop/node) gets a token
/// from a real broker with a JWT-SVID, has it introspected and revokes it: no Broker SDK, only
/// the standards the metadata names.
/// </summary>
public sealed class NodeOAuthClientTests : IAsyncLifetime
{
    private OAuthScenario _oauth = null!;

    private BrokerScenario Broker => _oauth.Broker;

    public async Task InitializeAsync() => _oauth = await OAuthScenario.StartAsync();

    public async Task DisposeAsync() => await _oauth.DisposeAsync();

    [Theory]
    [InlineData("token-exchange")]
    [InlineData("jwt-bearer")]
    public async Task A_node_agent_gets_uses_and_revokes_a_token_with_a_stock_oauth_client(string grant)
    {
        var result = await NodeOAuthClient.RunAsync(Environment(grant));

        var token = result.GetProperty("token");
        Assert.Equal("bearer", Text(token, "token_type"));
        Assert.Equal("urn:ietf:params:oauth:token-type:access_token", Text(token, "issued_token_type"));
        Assert.Equal("repo:read", Text(token, "scope"));
        Assert.Equal("planning", Text(token, "phase"));
        Assert.StartsWith("task_", Text(token, "task_id"), StringComparison.Ordinal);
        Assert.InRange(token.GetProperty("expires_in").GetInt32(), 1, 600);

        var introspection = result.GetProperty("introspection");
        Assert.True(introspection.GetProperty("active").GetBoolean());
        Assert.Equal("spiffe://example.org/agents/planner", Text(introspection, "sub"));
        Assert.Equal(Text(token, "token_id"), Text(introspection, "jti"));

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

    private Dictionary<string, string> Environment(string grant) => new()
    {
        ["BROKER_ISSUER"] = Broker.Host.Issuer,
        ["JWT_SVID"] = Broker.Svid(),
        ["BROKER_RESOURCE"] = BrokerScenario.ResourceAudience,
        ["RESOURCE_SERVER_TOKEN"] = Broker.Host.ResourceServerToken(),
        ["BROKER_GRANT"] = grant,
    };

    private static string Text(JsonElement element, string member) => element.GetProperty(member).GetString()!;
}
