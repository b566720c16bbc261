using Broker.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Broker.Server.OperatorConsole.Pages;

/// <summary>Where a role refusal lands (already audited as <c>operator.authentication_failed</c> ROLE_MISSING); answers 403.</summary>
public sealed class DeniedModel(IOptions<BrokerOptions> options) : ConsolePageModel(options)
{
    public void OnGet() => Response.StatusCode = StatusCodes.Status403Forbidden;
}
