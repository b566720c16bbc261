using System.ComponentModel;
using System.Security.Claims;
using Broker.ResourceServer;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Server;

namespace Broker.SampleMcpServer;

/// <summary>Tools that change production: <c>deploy:prod</c>, and only in the execution phase.</summary>
[McpServerToolType]
public sealed class DeployTools
{
    [McpServerTool(Name = "deploy", Destructive = true, Idempotent = false)]
    [Description("Deploys a version to production.")]
    [RequireBrokerScope("deploy:prod")]
    [RequireBrokerPhase(BrokerPhases.Execution)]
    public static string Deploy(ClaimsPrincipal caller, ILogger<DeployTools> logger, [Description("The version to deploy")] string version)
    {
        var subject = caller.FindFirst(BrokerClaimTypes.Subject)?.Value;
        var task = caller.FindFirst(BrokerClaimTypes.Task)?.Value;
        Log.Deployment(logger, version, subject, task, caller.FindFirst(BrokerClaimTypes.TokenId)?.Value);
        return $"deployed {version} to prod for {subject} (task {task})";
    }
}
