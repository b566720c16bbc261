using System.CommandLine;
using System.CommandLine.Parsing;
using Broker.Cli.Dev;
using Broker.Cli.Operators;

namespace Broker.Cli.Commands;

/// <summary>
/// How admin commands (revoke, revocations) reach the broker and prove which operator runs
/// them: --broker, then --operator-token, $BROKER_OPERATOR_TOKEN, or --dev [--as NAME].
/// </summary>
internal sealed class OperatorOptions
{
    public const string OperatorTokenVariable = "BROKER_OPERATOR_TOKEN";

    /// <summary>Operator tokens from IdPs are a few kilobytes; anything larger is not one.</summary>
    public const int MaxTokenLength = 16 * 1024;

    public Option<string> Broker { get; } = BrokerAddress.CreateOption();

    public Option<string> OperatorToken { get; } = new("--operator-token")
    {
        Description = $"An operator bearer token from your organisation's IdP, with the role the command needs. Default: ${OperatorTokenVariable}. "
            + "Other local users can read command lines: prefer the variable.",
        HelpName = "TOKEN",
    };

    public Option<bool> Dev { get; } = new("--dev")
    {
        Description = "Use the local dev broker: its address and dev operator key come from <dev-dir>/dev.json, and a 5-minute operator token "
            + "with every role (responder, approver, iam-admin, auditor, telemetry-reader) is minted for --as.",
    };

    public Option<string> As { get; } = new("--as")
    {
        Description = $"With --dev: the operator name recorded as the actor (the token's sub). Default: {OperatorTokenMinter.DefaultOperator}.",
        HelpName = "NAME",
    };

    public Option<string> DevDir { get; } = BrokerAddress.CreateDevDirOption();

    public void AddTo(Command command)
    {
        command.Options.Add(Broker);
        command.Options.Add(OperatorToken);
        command.Options.Add(Dev);
        command.Options.Add(As);
        command.Options.Add(DevDir);
        command.Validators.Add(Validate);
    }

    private void Validate(CommandResult result)
    {
        var dev = result.GetValue(Dev);
        if (dev && result.GetResult(OperatorToken) is not null)
        {
            result.AddError("Authenticate one way only: --operator-token or --dev.");
        }

        if (!dev && result.GetResult(As) is not null)
        {
            result.AddError("--as is only used with --dev; with a real IdP the token names the operator.");
        }

        BrokerAddress.Validate(result, Broker);
    }

    /// <summary>The broker address and the operator token to send. Never prints the token.</summary>
    public (string Address, string Token) Resolve(ParseResult parseResult, CliContext context)
    {
        var explicitAddress = parseResult.GetValue(Broker);
        if (parseResult.GetValue(Dev))
        {
            var manifest = DevManifest.Load(parseResult.GetValue(DevDir)!);
            using var minter = OperatorTokenMinter.FromManifest(manifest, context.Time);
            var token = minter.Mint(parseResult.GetValue(As) ?? OperatorTokenMinter.DefaultOperator);
            return (BrokerAddress.FromDevManifest(explicitAddress, manifest), token);
        }

        var address = BrokerAddress.FromEnvironment(explicitAddress, context);
        var (text, source) = parseResult.GetValue(OperatorToken) is { } inline
            ? (inline, "--operator-token")
            : (context.GetEnvironmentVariable(OperatorTokenVariable), "$" + OperatorTokenVariable);
        if (text is null)
        {
            throw CliException.Usage(
                $"Say which operator you are: --operator-token TOKEN, ${OperatorTokenVariable}, or --dev against a dev broker.");
        }

        return (address, Normalize(text, source));
    }

    /// <summary>Trims a pasted token and drops a 'Bearer ' prefix; refuses what cannot be a bearer token without echoing it.</summary>
    internal static string Normalize(string text, string source)
    {
        var token = text.Trim();
        if (token.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            token = token["Bearer ".Length..].Trim();
        }

        if (token.Length == 0)
        {
            throw CliException.Usage($"{source} is empty.");
        }

        if (token.Length > MaxTokenLength)
        {
            throw CliException.Usage($"{source} is longer than {MaxTokenLength} characters; that is not an operator token.");
        }

        // A header value: no spaces or control characters, printable ASCII only.
        if (token.Any(c => c is < '!' or > '~'))
        {
            throw CliException.Usage($"{source} contains spaces or characters a bearer token cannot hold.");
        }

        return token;
    }
}

/// <summary>The broker address options shared by every command that calls the broker without attesting.</summary>
internal static class BrokerAddress
{
    public static Option<string> CreateOption() => new("--broker")
    {
        Description = $"Broker gRPC address (https://, or http:// for plaintext HTTP/2 on loopback). Default: ${ConnectionOptions.BrokerAddressVariable}, "
            + $"else {ConnectionOptions.DefaultBrokerAddress}; with --dev, the address in dev.json.",
        HelpName = "URL",
    };

    public static Option<string> CreateDevDirOption() => new("--dev-dir")
    {
        Description = "With --dev: the folder the dev broker wrote (relative to the current folder).",
        HelpName = "DIR",
        DefaultValueFactory = _ => DevManifest.DefaultDirectory,
    };

    public static void Validate(CommandResult result, Option<string> broker)
    {
        if (result.GetValue(broker) is { } address && !IsBrokerAddress(address))
        {
            result.AddError("--broker must be an absolute http:// or https:// URL.");
        }
    }

    public static string FromDevManifest(string? explicitAddress, DevManifest manifest)
    {
        var address = explicitAddress ?? manifest.GrpcAddress;
        if (!IsBrokerAddress(address))
        {
            throw CliException.Local("grpc_address in dev.json is not an http(s) URL.");
        }

        return address;
    }

    public static string FromEnvironment(string? explicitAddress, CliContext context)
    {
        var resolved = explicitAddress ?? context.GetEnvironmentVariable(ConnectionOptions.BrokerAddressVariable) ?? ConnectionOptions.DefaultBrokerAddress;
        if (!IsBrokerAddress(resolved))
        {
            throw CliException.Usage($"${ConnectionOptions.BrokerAddressVariable} must be an absolute http:// or https:// URL.");
        }

        return resolved;
    }

    private static bool IsBrokerAddress(string text) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps);
}
