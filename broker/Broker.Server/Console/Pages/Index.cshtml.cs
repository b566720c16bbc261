using Broker.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Broker.Server.OperatorConsole.Pages;

public sealed class IndexModel(IOptions<BrokerOptions> options) : ConsolePageModel(options)
{
    public IReadOnlyList<string> Roles => User.FindAll(Operators.RolesClaim).Select(c => c.Value).ToList();

    public void OnGet()
    {
    }
}
