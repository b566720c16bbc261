using Broker.Server.Hosting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace Broker.Server.OperatorConsole.Pages;

/// <summary>Ends the console session (a POST with the anti-forgery token, so no other site can sign an operator out).</summary>
public sealed class SignOutModel(IOptions<BrokerOptions> options) : ConsolePageModel(options)
{
    public IActionResult OnGet() => NotFound();

    public async Task<IActionResult> OnPostAsync()
    {
        await HttpContext.SignOutAsync(ConsoleAuthentication.CookieScheme);
        return Redirect(ConsolePaths.SignIn + "?signedOut=1");
    }
}
