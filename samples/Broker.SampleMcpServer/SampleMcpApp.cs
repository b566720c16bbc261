using Broker.ResourceServer;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;
using ModelContextProtocol.AspNetCore.Authentication;
using ModelContextProtocol.Authentication;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Broker.SampleMcpServer;

/// <summary>Builds the sample MCP server: Broker tokens in, tools gated by scope and phase, RFC 9728 metadata out.</summary>
public static class SampleMcpApp
{
    /// <summary>
    /// The configured application, not yet started. Throws <see cref="SampleMcpConfigurationException"/>
    /// listing every problem when the <c>Sample</c> section is unusable.
    /// </summary>
    /// <param name="args">Command-line arguments (<c>--Sample:Resource=...</c>, <c>--urls ...</c>).</param>
    /// <param name="adjust">Changes to the builder before the options are read (tests: configuration, logging).</param>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? adjust = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        adjust?.Invoke(builder);
        var sample = builder.Configuration.GetSection(SampleMcpOptions.Section).Get<SampleMcpOptions>() ?? new SampleMcpOptions();
        var problems = sample.Problems();
        if (problems.Count > 0)
        {
            throw new SampleMcpConfigurationException(problems);
        }

        builder.Services.AddSingleton(sample);
        builder.Services.AddBrokerResourceServer(options =>
        {
            options.Authority = sample.Issuer;
            options.Audience = sample.Resource; // the token's aud is the resource the agent named
            options.RevocationAddress = sample.RevocationAddress;
            options.RevocationTokenFile = Path.GetFullPath(sample.RevocationTokenFile);
            options.RequireHttpsMetadata = sample.RequireHttpsMetadata;
            options.StaleStance = StaleStance.FailClosed;
        });

        // One challenge carrying both where the metadata is and why the token was refused
        // (`Bearer resource_metadata="...", error="invalid_token", error_description="token revoked"`):
        // the MCP scheme's own challenge would add a second Bearer challenge without the reason.
        builder.Services.Configure<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme, jwt =>
            jwt.Challenge = $"{JwtBearerDefaults.AuthenticationScheme} resource_metadata=\"{sample.ResourceMetadataUri}\"");

        // The MCP SDK serves the RFC 9728 document; scopes_supported is read from the tools.
        builder.Services.AddAuthentication().AddMcp(mcp =>
        {
            mcp.ResourceMetadataUri = sample.ResourceMetadataUri;
            mcp.ResourceMetadata = new ProtectedResourceMetadata
            {
                Resource = sample.Resource,
                AuthorizationServers = [sample.Issuer],
                BearerMethodsSupported = ["header"],
                AuthorizationDetailsTypesSupported = ["agent_task"],
                ResourceName = "Broker sample MCP server",
            };
        });
        builder.Services.AddOptions<McpAuthenticationOptions>(McpAuthenticationDefaults.AuthenticationScheme)
            .Configure<IOptions<McpServerOptions>>((mcp, server) => mcp.ResourceMetadata!.ScopesSupported = ScopesOf(server.Value.ToolCollection));

        builder.Services.AddMcpServer(server => server.ServerInfo = new Implementation { Name = "broker-sample-mcp", Version = "1.0.0" })
            // Stateless: every request carries its token and is checked (revocation included) on its own.
            .WithHttpTransport(http => http.Stateless = true)
            .AddAuthorizationFilters() // tools/list shows only the tools the token may call
            .WithTools<RepoTools>()
            .WithTools<DeployTools>();

        builder.Services.AddAuthorizationBuilder().SetFallbackPolicy(new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build());
        builder.Services.AddHealthChecks().AddBrokerRevocationCheck();

        var app = builder.Build();
        Log.Starting(app.Logger, sample.Resource, sample.Issuer, sample.RevocationAddress, sample.ResourceMetadataUri);
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseMiddleware<ToolScopeChallenge>();
        app.MapHealthChecks("/healthz").AllowAnonymous();
        app.MapMcp(sample.McpPath).RequireAuthorization();
        return app;
    }

    /// <summary>Every scope some tool requires, in order of first appearance.</summary>
    internal static List<string> ScopesOf(IEnumerable<McpServerTool>? tools) =>
        [.. (tools ?? []).SelectMany(t => t.Metadata.OfType<RequireBrokerScopeAttribute>()).SelectMany(a => a.Scopes).Distinct(StringComparer.Ordinal)];
}

/// <summary>The <c>Sample</c> configuration is unusable; <see cref="Problems"/> says why, each with its id.</summary>
public sealed class SampleMcpConfigurationException(IReadOnlyList<string> problems) : Exception(string.Join(Environment.NewLine, problems))
{
    /// <summary>Every problem found, each starting with its SMC id.</summary>
    public IReadOnlyList<string> Problems { get; } = problems;
}
