namespace Broker.Server.Tests.Infrastructure;

/// <summary>
/// A small refusal budget over an hour-long window: the budget does not refill during a test
/// (it refills on the system clock), and the test closes the window itself with
/// <c>RefusalAuditor.FlushAsync</c>, as the node's timer does every window.
/// </summary>
public static class RefusalBudgetSettings
{
    public static Dictionary<string, string?> Of(int permitsPerWindow) => new()
    {
        ["Broker:RateLimit:PermitsPerWindow"] = permitsPerWindow.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Broker:RateLimit:Window"] = "01:00:00",
    };
}
