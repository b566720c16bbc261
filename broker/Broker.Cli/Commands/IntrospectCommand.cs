using System.CommandLine;
using Broker.Cli.Dev;

namespace Broker.Cli.Commands;

/// <summary><c>brokerctl introspect</c>: one RevocationService.Introspect call.</summary>
internal static class IntrospectCommand
{
    public static Command Create(CliContext context, HelpTexts help)
    {
        var input = new Argument<string>("TOKEN")
        {
            Description = "A Broker access token (a leading 'Bearer ' is ignored), or '-' to read it from stdin (keeps it out of the process list).",
        };
        var broker = BrokerAddress.CreateOption();
        var dev = new Option<bool>("--dev")
        {
            Description = "Ask the local dev broker: its address comes from <dev-dir>/dev.json.",
        };
        var devDir = BrokerAddress.CreateDevDirOption();
        var output = RevokeCommand.CreateOutputOption();
        var rsTokenFile = new Option<string>("--resource-server-token-file")
        {
            Description = $"A file holding a resource-server token (your IdP's, for the broker's resource-server audience and role). "
                + $"Default: ${ResourceServerTokenVariable}; with --dev, <dev-dir>/resource-server.token, which the dev broker writes.",
            HelpName = "PATH",
        };

        var command = new Command(
            "introspect",
            "Ask the broker whether a token is active right now (RevocationService.Introspect): signature, issuer, lifetime and every "
            + "revocation in force are checked. Prints active or inactive and why (revoked, expired, not_yet_valid, invalid_signature, "
            + "wrong_issuer, malformed), then the subject, audience, task, phase, scopes and expiry. Exits 0 when active, 1 when inactive, "
            + "3 when the node cannot confirm its revocation state. Authenticates as a resource server, not as an operator.");
        command.Arguments.Add(input);
        command.Options.Add(broker);
        command.Options.Add(dev);
        command.Options.Add(devDir);
        command.Options.Add(output);
        command.Options.Add(rsTokenFile);
        command.Validators.Add(result => BrokerAddress.Validate(result, broker));
        help.Add(command, """
            Examples:
              brokerctl introspect "$TOKEN"
              # After 'brokerctl revoke task incident-7 ...', the task's tokens answer inactive:
              echo "$TOKEN" | brokerctl introspect --dev -
              brokerctl introspect - --output json < token.txt | jq .inactive_reason

            The token is sent to the broker only; it is never printed.
            """);

        command.SetAction(BrokerCtl.Guarded(context, async (parseResult, cancellationToken) =>
        {
            var text = parseResult.GetValue(input)!;
            if (text == "-")
            {
                text = await TokenCommand.ReadStdinAsync(context.In, cancellationToken);
            }

            var token = Normalize(text);
            var address = parseResult.GetValue(dev)
                ? BrokerAddress.FromDevManifest(parseResult.GetValue(broker), DevManifest.Load(parseResult.GetValue(devDir)!))
                : BrokerAddress.FromEnvironment(parseResult.GetValue(broker), context);
            var credential = await ResourceServerTokenAsync(parseResult.GetValue(rsTokenFile), parseResult.GetValue(dev) ? parseResult.GetValue(devDir) : null, context, cancellationToken);
            using var api = new AdminApi(address, operatorToken: null);
            var response = await api.IntrospectAsync(token, credential, cancellationToken);
            if (parseResult.GetValue(output) == OutputFormat.Json)
            {
                RevocationOutput.WriteIntrospectionJson(context.Out, response);
            }
            else
            {
                RevocationOutput.WriteIntrospectionTable(context.Out, response, context.Time.GetUtcNow());
            }

            return response.Active ? ExitCodes.Success : ExitCodes.Refused;
        }));
        return command;
    }

    public const string ResourceServerTokenVariable = "BROKER_RESOURCE_SERVER_TOKEN";

    /// <summary>The resource-server token to authenticate with: --resource-server-token-file, the variable, or the dev broker's file.</summary>
    private static async Task<string> ResourceServerTokenAsync(string? file, string? devDir, CliContext context, CancellationToken cancellationToken)
    {
        file ??= devDir is null ? null : Path.Combine(devDir, "resource-server.token");
        string? text;
        if (file is not null)
        {
            if (!File.Exists(file))
            {
                throw CliException.Local($"no resource-server token at '{Path.GetFullPath(file)}'"
                    + (devDir is null ? "." : "; restart the broker with --dev to write one."));
            }

            text = await File.ReadAllTextAsync(file, cancellationToken);
        }
        else
        {
            text = context.GetEnvironmentVariable(ResourceServerTokenVariable);
        }

        if (string.IsNullOrWhiteSpace(text))
        {
            throw CliException.Usage($"introspect authenticates as a resource server: --resource-server-token-file PATH, ${ResourceServerTokenVariable}, or --dev against a dev broker.");
        }

        return OperatorOptions.Normalize(text, file ?? "$" + ResourceServerTokenVariable);
    }

    private static string Normalize(string text)
    {
        var token = text.Trim();
        if (token.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            token = token["Bearer ".Length..].Trim();
        }

        if (token.Length == 0)
        {
            throw CliException.Usage("no token given.");
        }

        if (token.Length > TokenCommand.MaxTokenLength)
        {
            throw CliException.Usage($"the token is longer than {TokenCommand.MaxTokenLength} characters.");
        }

        return token;
    }
}
