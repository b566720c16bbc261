using System.Globalization;
using System.Net;
using Broker.ResourceServer.Tests.Infrastructure;
using Broker.SampleMcpServer;
using Broker.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Broker.ResourceServer.Tests.Mcp;

/// <summary>
/// A real redis-server, a broker node keeping its state there, and the sample MCP server, each
/// on real Kestrel. The policy gives the agents <c>repo:read</c> in planning and
/// <c>deploy:prod</c> in execution for the MCP server's URL, with planning as the default phase;
/// a second, too generous rule (lax) gives <c>deploy:prod</c> in planning, to show that the MCP
/// server holds the phase line itself.
/// </summary>
public sealed class McpWorld : IAsyncLifetime
{
    private RedisServer? _redis;
    private WebApplication? _mcp;

    public BrokerNode Broker { get; private set; } = null!;

    /// <summary>The MCP server's URL: its endpoint, its RFC 9728 resource and the audience of its tokens.</summary>
    public string McpUrl { get; private set; } = "";

    public BrokerRevocationClient Revocations => _mcp!.Services.GetRequiredService<BrokerRevocationClient>();

    public static string Policy(string jwksPath, string mcpUrl) => $"""
        version: 1
        trust:
          spiffe:
            - trust_domain: example.org
              jwt_bundle_file: {jwksPath}
              refresh: 30s
        agents:
          - name: agents
            match: spiffe://example.org/agents/*
            default_phase: planning
            phases:
              planning:
                scopes: [repo:read]
                audiences: [{mcpUrl}]
                max_ttl: 10m
              execution:
                scopes: [repo:read, deploy:prod]
                audiences: [{mcpUrl}]
                max_ttl: 5m
          - name: lax
            match: spiffe://example.org/lax/*
            phases:
              planning:
                scopes: [repo:read, deploy:prod]
                audiences: [{mcpUrl}]
                max_ttl: 10m
        """;

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartAsync();
        var port = RedisServer.FreePort();
        McpUrl = $"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}/mcp";
        Broker = await BrokerNode.StartAsync(_redis.Configuration, jwks => Policy(jwks, McpUrl));
        _mcp = SampleMcpApp.Build([], builder =>
        {
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Sample:Issuer"] = Broker.Issuer,
                ["Sample:Resource"] = McpUrl,
                ["Sample:RevocationAddress"] = Broker.GrpcAddress,
                ["Sample:RevocationTokenFile"] = Broker.ResourceServerTokenFile,
            });
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
        });
        await _mcp.StartAsync();
        await Eventually.TrueAsync(() => Task.FromResult(Revocations.IsCurrent), TimeSpan.FromSeconds(10), "the MCP server's revocation client never became current");
    }

    public async Task DisposeAsync()
    {
        if (_mcp is not null)
        {
            await _mcp.StopAsync();
            await _mcp.DisposeAsync();
        }

        if (Broker is not null)
        {
            await Broker.DisposeAsync();
        }

        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }
    }
}
