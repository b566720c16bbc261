using Broker.Core.Errors;
using Broker.Server.Hosting;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace Broker.Server.OperatorConsole;

/// <summary>
/// What every console page shares: the operator's identity (as the API reads it from a token),
/// the request context handed to domain services, and how a domain refusal is shown: its
/// reason code and message, with the HTTP status matching the gRPC status the API would give.
/// </summary>
public abstract class ConsolePageModel(IOptions<BrokerOptions> options) : PageModel
{
    internal OperatorOptions Operators => options.Value.Operators;

    internal bool Dev => options.Value.Dev;

    /// <summary>Set after an action succeeded.</summary>
    public string? Done { get; protected set; }

    /// <summary>Set when the domain refused: <c>REASON: message</c>.</summary>
    public string? Refusal { get; protected set; }

    public string OperatorName => User.FindFirst(Operators.NameClaim)?.Value ?? "";

    public bool HasRole(string role) => User.HasClaim(Operators.RolesClaim, role);

    internal string Actor => ConsoleRequest.Actor(HttpContext, Operators);

    internal Broker.Core.Issuance.RequestContext CallContext => ConsoleRequest.Context(HttpContext);

    /// <summary>Runs a domain call; a refusal is shown on the page with the matching status instead of thrown.</summary>
    protected async Task<bool> TryAsync(Func<Task> call)
    {
        try
        {
            await call();
            return true;
        }
        catch (BrokerException ex)
        {
            Refusal = $"{ex.Reason}: {ex.Message}";
            Response.StatusCode = ex.Kind switch
            {
                FailureKind.InvalidArgument => StatusCodes.Status400BadRequest,
                FailureKind.Unauthenticated => StatusCodes.Status401Unauthorized,
                FailureKind.PermissionDenied => StatusCodes.Status403Forbidden,
                FailureKind.NotFound => StatusCodes.Status404NotFound,
                FailureKind.FailedPrecondition => StatusCodes.Status409Conflict,
                FailureKind.ResourceExhausted => StatusCodes.Status429TooManyRequests,
                FailureKind.Unavailable => StatusCodes.Status503ServiceUnavailable,
                _ => StatusCodes.Status500InternalServerError,
            };
            return false;
        }
    }

    protected static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
