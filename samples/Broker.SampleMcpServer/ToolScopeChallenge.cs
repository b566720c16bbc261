using System.Text.Json;
using Broker.ResourceServer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using ModelContextProtocol.Server;

namespace Broker.SampleMcpServer;

/// <summary>
/// Answers a <c>tools/call</c> the token may not make with HTTP 403 and
/// <c>WWW-Authenticate: Bearer error="insufficient_scope", scope=..., resource_metadata=...</c>
/// (RFC 6750 §3.1, the MCP authorization spec's scope challenge), so an agent learns which
/// scope or phase to ask Broker for. The MCP SDK's own authorization filter, which also checks
/// every call, would answer a JSON-RPC error inside a 200 instead. The requirements are the
/// tool's own <see cref="IAuthorizationRequirementData"/> attributes: one declaration per tool.
/// </summary>
internal sealed class ToolScopeChallenge(RequestDelegate next, IOptions<McpServerOptions> mcp, SampleMcpOptions sample, ILogger<ToolScopeChallenge> logger)
{
    private readonly PathString _path = new(sample.McpPath.Length == 0 ? "/" : sample.McpPath);

    public async Task InvokeAsync(HttpContext context)
    {
        if (!HttpMethods.IsPost(context.Request.Method) || !context.Request.Path.Equals(_path) || context.User.Identity?.IsAuthenticated != true)
        {
            await next(context);
            return;
        }

        context.Request.EnableBuffering();
        var call = await ToolCall.ReadAsync(context.Request.Body, context.RequestAborted);
        context.Request.Body.Position = 0;
        if (call is { } named && mcp.Value.ToolCollection is { } tools && tools.TryGetPrimitive(named.Tool, out var tool))
        {
            var requirements = tool.Metadata.OfType<IAuthorizationRequirementData>().SelectMany(d => d.GetRequirements()).ToList();
            if (requirements.Count > 0)
            {
                var authorization = context.RequestServices.GetRequiredService<IAuthorizationService>();
                if (!(await authorization.AuthorizeAsync(context.User, resource: null, requirements)).Succeeded)
                {
                    await RefuseAsync(context, named, requirements);
                    return;
                }
            }
        }

        await next(context);
    }

    private async Task RefuseAsync(HttpContext context, ToolCall call, List<IAuthorizationRequirement> requirements)
    {
        var scopes = requirements.OfType<BrokerScopeRequirement>().SelectMany(r => r.Scopes).Distinct(StringComparer.Ordinal).ToList();
        var phase = requirements.OfType<BrokerPhaseRequirement>().Select(r => r.Phase).FirstOrDefault();
        var needs = (scopes.Count > 0 ? "scope " + string.Join(' ', scopes) : "") + (phase is null ? "" : (scopes.Count > 0 ? " " : "") + "in phase " + phase);
        Log.ToolRefused(logger, call.Tool, context.User.FindFirst(BrokerClaimTypes.Subject)?.Value, context.User.FindFirst(BrokerClaimTypes.TokenId)?.Value, needs);

        // Scopes, phases and tool names come from this server's code, never from the request, and
        // contain no quote: they are safe inside the quoted parameters.
        var challenge = "Bearer error=\"insufficient_scope\""
            + (scopes.Count > 0 ? $", scope=\"{string.Join(' ', scopes)}\"" : "")
            + $", resource_metadata=\"{sample.ResourceMetadataUri}\""
            + $", error_description=\"tool {call.Tool} needs {needs}\"";
        context.Response.StatusCode = StatusCodes.Status403Forbidden;
        context.Response.Headers.Append(HeaderNames.WWWAuthenticate, challenge);
        context.Response.Headers.CacheControl = "no-store";

        // A JSON-RPC error too, for clients that read the body rather than the header.
        await context.Response.WriteAsJsonAsync(new Dictionary<string, object?>
        {
            ["jsonrpc"] = "2.0",
            ["id"] = call.Id,
            ["error"] = new Dictionary<string, object> { ["code"] = -32600, ["message"] = $"insufficient_scope: tool {call.Tool} needs {needs}" },
        }, context.RequestAborted);
    }

    /// <summary>The tool a JSON-RPC <c>tools/call</c> request names, with the request id; null for anything else.</summary>
    private readonly record struct ToolCall(string Tool, JsonElement? Id)
    {
        public static async Task<ToolCall?> ReadAsync(Stream body, CancellationToken cancellationToken)
        {
            try
            {
                using var document = await JsonDocument.ParseAsync(body, cancellationToken: cancellationToken);
                var root = document.RootElement;
                if (root.ValueKind == JsonValueKind.Object
                    && root.TryGetProperty("method", out var method) && method.ValueKind == JsonValueKind.String && method.ValueEquals("tools/call")
                    && root.TryGetProperty("params", out var parameters) && parameters.ValueKind == JsonValueKind.Object
                    && parameters.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String)
                {
                    return new ToolCall(name.GetString()!, root.TryGetProperty("id", out var id) ? id.Clone() : null);
                }
            }
            catch (JsonException)
            {
                // Not JSON: the MCP endpoint answers that itself.
            }

            return null;
        }
    }
}
