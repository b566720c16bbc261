using Microsoft.Extensions.Options;

namespace Broker.Server.Hosting;

/// <summary>Start-up checks for <see cref="ResourceServerOptions"/> (BRK1070-1073).</summary>
public sealed class ResourceServerOptionsValidator(BrokerOptions broker) : IValidateOptions<ResourceServerOptions>
{
    public ValidateOptionsResult Validate(string? name, ResourceServerOptions options)
    {
        var problems = Problems(options, broker);
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }

    public static List<string> Problems(ResourceServerOptions options, BrokerOptions broker)
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(options.Audience))
        {
            problems.Add("BRK1070: Broker:ResourceServers:Audience must name the audience of resource-server tokens (default broker-resource-servers).");
        }
        else if (string.Equals(options.Audience, broker.Operators.Audience, StringComparison.Ordinal)
            || string.Equals(options.Audience, broker.Audience, StringComparison.Ordinal)
            || string.Equals(options.Audience, broker.Issuer, StringComparison.Ordinal))
        {
            problems.Add("BRK1070: Broker:ResourceServers:Audience must differ from Broker:Operators:Audience, Broker:Audience and Broker:Issuer: an operator or agent credential must never open the revocation channel.");
        }

        if (string.IsNullOrWhiteSpace(options.Role) || string.IsNullOrWhiteSpace(options.RolesClaim) || string.IsNullOrWhiteSpace(options.NameClaim))
        {
            problems.Add("BRK1071: Broker:ResourceServers:Role, RolesClaim and NameClaim must not be empty.");
        }

        if (!string.IsNullOrEmpty(options.KeyFile))
        {
            if (!File.Exists(options.KeyFile))
            {
                problems.Add($"BRK1072: Broker:ResourceServers:KeyFile '{options.KeyFile}' does not exist.");
            }

            if (string.IsNullOrWhiteSpace(options.Issuer))
            {
                problems.Add("BRK1072: Broker:ResourceServers:Issuer is required with Broker:ResourceServers:KeyFile: the iss of the tokens that key signs.");
            }

            if (!string.IsNullOrEmpty(options.Authority))
            {
                problems.Add("BRK1072: set Broker:ResourceServers:Authority or Broker:ResourceServers:KeyFile, not both.");
            }
        }
        else if (!string.IsNullOrEmpty(options.Authority) && string.Equals(options.Authority.TrimEnd('/'), broker.Issuer.TrimEnd('/'), StringComparison.OrdinalIgnoreCase))
        {
            problems.Add("BRK1072: Broker:ResourceServers:Authority must not be Broker's own issuer: agent credentials must never open the revocation channel.");
        }
        else if (!broker.Dev && string.IsNullOrWhiteSpace(options.Authority) && string.IsNullOrWhiteSpace(broker.Operators.Authority) && string.IsNullOrWhiteSpace(broker.Operators.KeyFile))
        {
            problems.Add("BRK1072: resource servers need a token issuer: Broker:ResourceServers:Authority (default: the operators' Authority or KeyFile) or Broker:ResourceServers:KeyFile with Issuer.");
        }

        if (options.MaxStreamsPerCaller < 1 || options.MaxStreams < 1 || options.MaxStreamsPerCaller > options.MaxStreams)
        {
            problems.Add("BRK1073: Broker:ResourceServers:MaxStreamsPerCaller and MaxStreams must be positive, and MaxStreamsPerCaller at most MaxStreams.");
        }

        return problems;
    }
}
