using Microsoft.Extensions.Logging;

namespace Broker.SampleMcpServer;

/// <summary>The sample's log messages: subject, task and token id, never a token.</summary>
internal static partial class Log
{
    [LoggerMessage(2600, LogLevel.Information, "MCP server {Resource} accepting Broker tokens from {Issuer}; revocations from {RevocationAddress}; metadata at {Metadata}")]
    public static partial void Starting(ILogger logger, string resource, string issuer, string revocationAddress, Uri metadata);

    [LoggerMessage(2601, LogLevel.Information, "Production deployment of {Version} by {Subject} for task {Task} with token {TokenId}")]
    public static partial void Deployment(ILogger logger, string version, string? subject, string? task, string? tokenId);

    [LoggerMessage(2602, LogLevel.Information, "Tool {Tool} refused to {Subject} (token {TokenId}): {Missing}")]
    public static partial void ToolRefused(ILogger logger, string tool, string? subject, string? tokenId, string missing);
}
