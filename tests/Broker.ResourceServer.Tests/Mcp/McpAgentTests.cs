using System.Net;
using System.Text.Json;
using Broker.ResourceServer.Tests.Infrastructure;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using WireSelector = Broker.V1.RevocationSelector;

namespace Broker.ResourceServer.Tests.Mcp;

/// <summary>
/// An agent drives the sample MCP server with the MCP C# client, using only what the MCP server
/// and Broker publish: discovery, a token from Broker's /oauth2/token with its JWT-SVID, tools
/// gated by scope and phase, and revocation followed within a bound (polled, never slept).
/// </summary>
public sealed class McpAgentTests(McpWorld world) : IClassFixture<McpWorld>
{
    private static readonly TimeSpan PropagationBound = TimeSpan.FromSeconds(5);

    private static string Text(CallToolResult result) => string.Concat(result.Content.OfType<TextContentBlock>().Select(b => b.Text));

    private static async Task<string[]> ToolNamesAsync(McpClient client) => [.. (await client.ListToolsAsync()).Select(t => t.Name).Order(StringComparer.Ordinal)];

    [Fact]
    public async Task Discovery_leads_from_the_mcp_server_to_brokers_token_endpoint()
    {
        using var agent = new McpAgent(world.McpUrl);

        var discovery = await agent.DiscoverAsync();

        Assert.Equal(world.McpUrl.Replace("/mcp", "/.well-known/oauth-protected-resource/mcp", StringComparison.Ordinal), discovery.ResourceMetadataUrl);
        var metadata = discovery.ResourceMetadata;
        Assert.Equal(world.McpUrl, metadata.GetProperty("resource").GetString());
        Assert.Equal([world.Broker.Issuer], metadata.GetProperty("authorization_servers").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["repo:read", "deploy:prod"], metadata.GetProperty("scopes_supported").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["header"], metadata.GetProperty("bearer_methods_supported").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(world.Broker.Issuer, discovery.AuthorizationServerMetadata.GetProperty("issuer").GetString());
        Assert.Equal(world.Broker.Issuer + "/oauth2/token", discovery.TokenEndpoint);
        Assert.Contains(McpAgent.JwtBearer, discovery.AuthorizationServerMetadata.GetProperty("grant_types_supported").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task A_planning_token_lists_and_calls_only_the_read_tool_and_is_refused_deploy_with_insufficient_scope()
    {
        using var agent = new McpAgent(world.McpUrl);
        var discovery = await agent.DiscoverAsync();
        var token = await agent.TokenAsync(discovery, world.Broker.Svid(), "repo:read", task: "mcp-planning");
        await using var client = await agent.ConnectAsync(token);

        Assert.Equal(["read_repo"], await ToolNamesAsync(client));
        var read = await client.CallToolAsync("read_repo", new Dictionary<string, object?> { ["path"] = "README.md" });
        Assert.NotEqual(true, read.IsError);
        Assert.Equal("README.md: read for spiffe://example.org/agents/planner (task mcp-planning, phase planning)", Text(read));

        var refused = await Assert.ThrowsAsync<HttpRequestException>(async () => await client.CallToolAsync("deploy", new Dictionary<string, object?> { ["version"] = "1.2.3" }));
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        var (status, challenge) = agent.Responses.Last;
        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.NotNull(challenge);
        Assert.Equal("insufficient_scope", McpAgent.Parameter(challenge, "error"));
        Assert.Equal("deploy:prod", McpAgent.Parameter(challenge, "scope"));
        Assert.Equal(discovery.ResourceMetadataUrl, McpAgent.Parameter(challenge, "resource_metadata"));
        Assert.Equal("tool deploy needs scope deploy:prod in phase execution", McpAgent.Parameter(challenge, "error_description"));
    }

    [Fact]
    public async Task Broker_itself_refuses_deploy_prod_to_a_planning_agent()
    {
        using var agent = new McpAgent(world.McpUrl);
        var discovery = await agent.DiscoverAsync();

        var (status, body) = await agent.RequestTokenAsync(discovery, world.Broker.Svid(), "repo:read deploy:prod", task: "mcp-escalation");

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_scope", body.GetProperty("error").GetString());
        Assert.Equal("SCOPE_NOT_ALLOWED", body.GetProperty("broker_reason").GetString());
    }

    [Fact]
    public async Task An_execution_token_lists_and_calls_deploy()
    {
        using var agent = new McpAgent(world.McpUrl);
        var discovery = await agent.DiscoverAsync();
        var token = await agent.TokenAsync(discovery, world.Broker.Svid(), "repo:read deploy:prod", task: "mcp-execution", phase: "execution");
        await using var client = await agent.ConnectAsync(token);

        Assert.Equal(["deploy", "read_repo"], await ToolNamesAsync(client));
        var deployed = await client.CallToolAsync("deploy", new Dictionary<string, object?> { ["version"] = "1.2.3" });

        Assert.NotEqual(true, deployed.IsError);
        Assert.Equal("deployed 1.2.3 to prod for spiffe://example.org/agents/planner (task mcp-execution)", Text(deployed));
    }

    [Fact]
    public async Task The_mcp_server_holds_the_phase_line_even_when_a_policy_grants_the_scope_in_planning()
    {
        using var agent = new McpAgent(world.McpUrl);
        var discovery = await agent.DiscoverAsync();
        var token = await agent.TokenAsync(discovery, world.Broker.Svid("/lax/bot"), "repo:read deploy:prod", task: "mcp-lax", phase: "planning");
        await using var client = await agent.ConnectAsync(token);

        Assert.Equal(["read_repo"], await ToolNamesAsync(client));
        var refused = await Assert.ThrowsAsync<HttpRequestException>(async () => await client.CallToolAsync("deploy", new Dictionary<string, object?> { ["version"] = "1.2.3" }));

        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        var challenge = agent.Responses.Last.Challenge!;
        Assert.Equal("insufficient_scope", McpAgent.Parameter(challenge, "error"));
        Assert.Equal("tool deploy needs scope deploy:prod in phase execution", McpAgent.Parameter(challenge, "error_description"));
    }

    [Fact]
    public async Task A_token_that_is_not_brokers_is_refused_with_the_metadata_and_the_reason()
    {
        using var agent = new McpAgent(world.McpUrl);
        var discovery = await agent.DiscoverAsync();

        var refused = await Assert.ThrowsAsync<HttpRequestException>(async () => await agent.ConnectAsync("not-a-token"));

        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        var challenge = agent.Responses.Last.Challenge!;
        Assert.Equal(discovery.ResourceMetadataUrl, McpAgent.Parameter(challenge, "resource_metadata"));
        Assert.Equal("invalid_token", McpAgent.Parameter(challenge, "error"));
    }

    [Fact]
    public async Task Revoking_the_task_refuses_the_agent_within_the_bound_and_spares_other_tasks()
    {
        using var agent = new McpAgent(world.McpUrl);
        var discovery = await agent.DiscoverAsync();
        var token = await agent.TokenAsync(discovery, world.Broker.Svid(), "repo:read", task: "mcp-doomed");
        var bystanderToken = await agent.TokenAsync(discovery, world.Broker.Svid(), "repo:read", task: "mcp-bystander");
        await using var client = await agent.ConnectAsync(token);
        Assert.NotEqual(true, (await client.CallToolAsync("read_repo", new Dictionary<string, object?> { ["path"] = "a" })).IsError);

        await world.Broker.RevokeAsync(new WireSelector { TaskId = "mcp-doomed" });

        await Eventually.TrueAsync(
            async () =>
            {
                try
                {
                    await client.CallToolAsync("read_repo", new Dictionary<string, object?> { ["path"] = "a" });
                    return false;
                }
                catch (HttpRequestException e) when (e.StatusCode == HttpStatusCode.Unauthorized)
                {
                    return true;
                }
            },
            PropagationBound,
            "the MCP server refuses the revoked task's token");
        var challenge = agent.Responses.Last.Challenge!;
        Assert.Equal("token revoked", McpAgent.Parameter(challenge, "error_description"));
        Assert.Equal(discovery.ResourceMetadataUrl, McpAgent.Parameter(challenge, "resource_metadata"));

        await using var bystander = await agent.ConnectAsync(bystanderToken);
        Assert.Equal(["read_repo"], await ToolNamesAsync(bystander));
    }
}
