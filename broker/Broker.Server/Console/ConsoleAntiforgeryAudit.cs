using Microsoft.AspNetCore.Mvc.Filters;
using Microsoft.AspNetCore.Mvc.Core.Infrastructure;

namespace Broker.Server.OperatorConsole;

/// <summary>
/// Audits a console form post refused for a missing or wrong anti-forgery token (the page
/// filter answers 400 before any handler, so no domain service was called).
/// </summary>
internal sealed class ConsoleAntiforgeryAudit : IAsyncAlwaysRunResultFilter
{
    public const string Reason = "ANTIFORGERY_INVALID";

    public async Task OnResultExecutionAsync(ResultExecutingContext context, ResultExecutionDelegate next)
    {
        if (context.Result is IAntiforgeryValidationFailedResult)
        {
            await ConsoleAudit.RequestRefusedAsync(context.HttpContext, Reason);
        }

        await next();
    }
}
