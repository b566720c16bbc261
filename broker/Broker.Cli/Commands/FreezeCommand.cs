using System.CommandLine;

namespace Broker.Cli.Commands;

/// <summary><c>brokerctl freeze|unfreeze</c>: break glass — stop (or resume) all issuance on every node.</summary>
internal static class FreezeCommand
{
    public static void AddTo(RootCommand root, CliContext context, HelpTexts help)
    {
        root.Subcommands.Add(Create(context, help, freeze: true));
        root.Subcommands.Add(Create(context, help, freeze: false));
    }

    private static Command Create(CliContext context, HelpTexts help, bool freeze)
    {
        var reason = RevokeCommand.ReasonOption(freeze ? "Why issuance is frozen; audited and shown to refused callers." : "Why issuance may resume; audited.");
        var operatorOptions = new OperatorOptions();
        var command = new Command(
            freeze ? "freeze" : "unfreeze",
            freeze
                ? "Break glass: every broker node refuses ALL issuance (UNAVAILABLE / ISSUANCE_FROZEN) within the revocation staleness bound (2 s), "
                  + "until `brokerctl unfreeze`. Admin calls, revocation, introspection and the revocation stream keep working. Role: responder."
                : "End a freeze: issuance resumes on every node within the revocation staleness bound. Role: responder.");
        command.Options.Add(reason);
        operatorOptions.AddTo(command);
        help.Add(command, freeze
            ? """
              Examples:
                brokerctl freeze --reason "INC-512: signing host compromised" --dev
                brokerctl revoke before now --reason "INC-512"   # then kill what was issued
              """
            : """
              Examples:
                brokerctl unfreeze --reason "INC-512: keys rotated" --dev
              """);

        command.SetAction(BrokerCtl.Guarded(context, async (parseResult, cancellationToken) =>
        {
            var (address, token) = operatorOptions.Resolve(parseResult, context);
            using var api = new AdminApi(address, token);
            var state = await api.FreezeAsync(freeze, parseResult.GetValue(reason)!, cancellationToken);
            context.Out.WriteLine(state.Frozen
                ? $"issuance FROZEN on every node by {state.Actor} since {RevocationOutput.Time(state.Since)}: {state.Reason}"
                : "issuance resumed on every node");
            return ExitCodes.Success;
        }));
        return command;
    }
}
