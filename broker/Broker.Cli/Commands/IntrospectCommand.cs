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

        var command = new Command(
            "introspect",
            "Ask the broker whether a token is active right now (RevocationService.Introspect): signature, issuer, lifetime and every "
            + "revocation in force are checked. Prints active or inactive and why (revoked, expired, not_yet_valid, invalid_signature, "
            + "wrong_issuer, malformed), then the subject, audience, task, phase, scopes and expiry. Exits 0 when active, 1 when inactive, "
            + "3 when the node cannot confirm its revocation state. Needs no operator token.");
        command.Arguments.Add(input);
        command.Options.Add(broker);
        command.Options.Add(dev);
        command.Options.Add(devDir);
        command.Options.Add(output);
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
            using var api = new AdminApi(address, operatorToken: null);
            var response = await api.IntrospectAsync(token, cancellationToken);
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
