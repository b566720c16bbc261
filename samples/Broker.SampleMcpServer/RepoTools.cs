using System.ComponentModel;
using System.Security.Claims;
using Broker.ResourceServer;
using ModelContextProtocol.Server;

namespace Broker.SampleMcpServer;

/// <summary>Read-only tools: any phase, with <c>repo:read</c>.</summary>
[McpServerToolType]
public sealed class RepoTools
{
    [McpServerTool(Name = "read_repo", ReadOnly = true, Destructive = false)]
    [Description("Reads a file of the repository.")]
    [RequireBrokerScope("repo:read")]
    public static string ReadRepo(ClaimsPrincipal caller, [Description("Path of the file in the repository")] string path) =>
        $"{path}: read for {caller.FindFirst(BrokerClaimTypes.Subject)?.Value} (task {caller.FindFirst(BrokerClaimTypes.Task)?.Value}, phase {caller.FindFirst(BrokerClaimTypes.Phase)?.Value})";
}
