using Broker.Server.Hosting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace Broker.Server.OperatorConsole.Pages;

/// <summary>
/// Production: starts the authorization code + PKCE flow at the operator Authority (a plain GET,
/// so the CSP's form-action never meets the IdP's origin). --dev: the local dev sign-in.
/// After a failure or a sign-out it waits for a click, so it never loops through the IdP.
/// </summary>
public sealed class SignInModel(IOptions<BrokerOptions> options) : ConsolePageModel(options)
{
    public bool Failed { get; private set; }

    public bool SignedOut { get; private set; }

    public IActionResult OnGet(string? returnUrl, bool failed = false, bool signedOut = false, bool start = false)
    {
        var target = ConsoleRedirects.Local(returnUrl);
        if (Dev)
        {
            return Redirect(ConsolePaths.DevSignIn + (target == ConsolePaths.Root ? "" : "?returnUrl=" + Uri.EscapeDataString(target)));
        }

        Failed = failed;
        SignedOut = signedOut;
        if ((failed || signedOut) && !start)
        {
            return Page();
        }

        return Challenge(new AuthenticationProperties { RedirectUri = target }, ConsoleAuthentication.OidcScheme);
    }
}
