using System.Security.Claims;
using Broker.Core.Approvals;
using Broker.Core.Errors;
using Broker.Core.Issuance;
using Broker.Server.Hosting;

namespace Broker.Server.OperatorConsole;

/// <summary>What a console request hands the domain services: the same context and operator identity as an API call.</summary>
internal static class ConsoleRequest
{
    private const string CorrelationItem = "broker.console.correlation";

    /// <summary>One fresh correlation id per console request (a browser supplies none).</summary>
    public static string CorrelationId(HttpContext context)
    {
        if (context.Items[CorrelationItem] is not string id)
        {
            id = Guid.NewGuid().ToString("N");
            context.Items[CorrelationItem] = id;
        }

        return id;
    }

    public static RequestContext Context(HttpContext context) =>
        new(CorrelationId(context), "console:" + context.Connection.RemoteIpAddress);

    /// <summary>The operator as <c>operator:NAME</c>, exactly as the API records it.</summary>
    public static string Actor(HttpContext context, OperatorOptions operators) => OperatorAuthentication.ActorOf(context, operators);

    /// <summary>The operator as an approver: name and groups, exactly as the approval API reads them from a token.</summary>
    public static Approver Approver(ClaimsPrincipal user, OperatorOptions operators) => OperatorAuthentication.ApproverOf(user, operators);
}
