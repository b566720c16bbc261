using Broker.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Broker.Server.OperatorConsole;

/// <summary>
/// Checks <see cref="ConsoleOptions"/> against the broker's: outside --dev an enabled console
/// needs an OIDC client at the operator Authority. Runs at registration (a clean start-up
/// refusal) and again through <c>ValidateOnStart</c>.
/// </summary>
internal sealed class ConsoleOptionsValidator(IOptions<BrokerOptions> broker) : IValidateOptions<ConsoleOptions>
{
    public ValidateOptionsResult Validate(string? name, ConsoleOptions options)
    {
        var problems = Problems(options, broker.Value);
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }

    public static List<string> Problems(ConsoleOptions options, BrokerOptions broker)
    {
        var problems = new List<string>();
        if (options.SessionLifetime < TimeSpan.FromMinutes(1) || options.SessionLifetime > TimeSpan.FromHours(12))
        {
            problems.Add("BRK1120: Broker:Console:SessionLifetime must be between 00:01:00 and 12:00:00.");
        }

        if (broker.Dev || !options.IsEnabled(broker.Dev))
        {
            return problems;
        }

        if (string.IsNullOrWhiteSpace(options.ClientId))
        {
            problems.Add("BRK1121: Broker:Console:ClientId is required when the console is enabled outside --dev: operators sign in with the operator IdP (Broker:Operators:Authority); set Broker:Console:Enabled=false to serve no console.");
        }

        if (!Uri.TryCreate(broker.Operators.Authority, UriKind.Absolute, out var authority)
            || !(authority.Scheme == Uri.UriSchemeHttps || (authority.Scheme == Uri.UriSchemeHttp && authority.IsLoopback)))
        {
            problems.Add("BRK1122: the console signs operators in with Broker:Operators:Authority, which must be an https:// OIDC issuer (http:// only on loopback).");
        }

        if (!string.IsNullOrWhiteSpace(options.ClientSecretFile) && !File.Exists(options.ClientSecretFile))
        {
            problems.Add($"BRK1123: Broker:Console:ClientSecretFile '{options.ClientSecretFile}' does not exist.");
        }

        return problems;
    }
}
