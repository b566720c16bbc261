using Broker.Server.Hosting;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace Broker.Server.OperatorConsole.Pages;

/// <summary>
/// --dev only: a session for any operator name and roles, standing in for the IdP as the dev
/// operator key does for the API. Outside --dev this page has no route at all
/// (<see cref="ConsoleServiceExtensions"/>), and refuses even if reached.
/// </summary>
public sealed class DevSignInModel(IOptions<BrokerOptions> options) : ConsolePageModel(options)
{
    public const int MaxNameLength = 128;

    public static readonly IReadOnlyList<string> Roles =
        [OperatorRoles.Approver, OperatorRoles.Responder, OperatorRoles.Auditor, OperatorRoles.IamAdmin, OperatorRoles.TelemetryReader];

    public string ReturnUrl { get; private set; } = ConsolePaths.Root;

    public IActionResult OnGet(string? returnUrl)
    {
        if (!Dev)
        {
            return NotFound();
        }

        ReturnUrl = ConsoleRedirects.Local(returnUrl);
        return Page();
    }

    public async Task<IActionResult> OnPostAsync(string? name, string[]? roles, string? returnUrl)
    {
        if (!Dev)
        {
            return NotFound();
        }

        name = name?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > MaxNameLength || name.Any(char.IsControl))
        {
            Refusal = $"INVALID_ARGUMENT: the operator name must be 1 to {MaxNameLength} characters without control characters.";
            Response.StatusCode = StatusCodes.Status400BadRequest;
            ReturnUrl = ConsoleRedirects.Local(returnUrl);
            return Page();
        }

        var principal = ConsoleAuthentication.Principal(Operators, name, (roles ?? []).Where(Roles.Contains).Distinct());
        await ConsoleAuthentication.SignInAsync(HttpContext, principal);
        await ConsoleAudit.SignedInAsync(HttpContext, principal, "dev");
        return Redirect(ConsoleRedirects.Local(returnUrl));
    }
}
