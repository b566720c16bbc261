using Microsoft.Extensions.Options;

namespace Broker.Core.Secrets;

/// <summary>Checks <see cref="SecretOptions"/> at start; each message names the setting and carries a stable id.</summary>
public sealed class SecretOptionsValidator : IValidateOptions<SecretOptions>
{
    public ValidateOptionsResult Validate(string? name, SecretOptions options)
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(options.Node) || options.Node.Length > 128)
        {
            problems.Add("BRK1140: Broker:Secrets:Node must name this node in 1 to 128 characters.");
        }

        if (options.SweepInterval < TimeSpan.FromMilliseconds(100) || options.SweepInterval > TimeSpan.FromMinutes(5))
        {
            problems.Add("BRK1141: Broker:Secrets:SweepInterval must be between 100ms and 5m.");
        }

        if (options.ClaimHold < TimeSpan.FromSeconds(1) || options.ClaimHold > TimeSpan.FromMinutes(10))
        {
            problems.Add("BRK1142: Broker:Secrets:ClaimHold must be between 1s and 10m.");
        }

        if (options.SweepLimit is < 1 or > 1_000_000)
        {
            problems.Add("BRK1143: Broker:Secrets:SweepLimit must be between 1 and 1000000.");
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
