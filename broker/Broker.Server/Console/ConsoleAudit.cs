using System.Security.Claims;
using Broker.Core.Audit;
using Broker.Core.Policy;
using Broker.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Broker.Server.OperatorConsole;

/// <summary>
/// The console's own identity events. Everything an operator does through the console is
/// audited by the domain service it calls, exactly as through the API; these cover only what
/// happens before a service is reached.
/// </summary>
internal static class ConsoleAudit
{
    /// <summary>Same record and reason as a refused operator token on the API.</summary>
    public static Task AuthenticationFailedAsync(HttpContext context, string reason) =>
        OperatorAuthentication.AuditAsync(context, reason);

    public static Task SignedInAsync(HttpContext context, ClaimsPrincipal principal, string how) =>
        AppendAsync(context, AuditEventTypes.ConsoleSignedIn, AuditOutcomes.Success, null, ActorOf(context, principal), how);

    public static Task RequestRefusedAsync(HttpContext context, string reason) =>
        AppendAsync(context, AuditEventTypes.ConsoleRequestRefused, AuditOutcomes.Failure, reason, context.User.Identity?.IsAuthenticated == true ? ActorOf(context, context.User) : null, context.Request.Path);

    private static string ActorOf(HttpContext context, ClaimsPrincipal principal)
    {
        var operators = context.RequestServices.GetRequiredService<IOptions<BrokerOptions>>().Value.Operators;
        return principal.FindFirst(operators.NameClaim)?.Value is { Length: > 0 } name ? "operator:" + name : "operator:unknown";
    }

    private static async Task AppendAsync(HttpContext context, (int Id, string Name) type, string outcome, string? reason, string? actor, string? detail)
    {
        var services = context.RequestServices;
        await services.GetRequiredService<IAuditSink>().AppendAsync(
            new AuditEvent
            {
                EventId = type.Id,
                Type = type.Name,
                Time = services.GetRequiredService<TimeProvider>().GetUtcNow(),
                CorrelationId = ConsoleRequest.CorrelationId(context),
                PolicyDigest = services.GetRequiredService<IPolicyProvider>().Current.Digest,
                Outcome = outcome,
                Reason = reason,
                Actor = actor,
                Detail = detail,
                Peer = context.Connection.RemoteIpAddress?.ToString(),
            },
            context.RequestAborted);
    }
}
