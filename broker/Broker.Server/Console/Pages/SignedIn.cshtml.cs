using Broker.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Broker.Server.OperatorConsole.Pages;

/// <summary>
/// The end of the IdP's redirect chain. The SameSite=Strict session cookie is not sent on a
/// navigation that a cross-site redirect started, so this page moves on with a same-site one.
/// </summary>
public sealed class SignedInModel(IOptions<BrokerOptions> options) : ConsolePageModel(options)
{
    public string Target { get; private set; } = ConsolePaths.Root;

    public void OnGet(string? to) => Target = ConsoleRedirects.Local(to);
}
