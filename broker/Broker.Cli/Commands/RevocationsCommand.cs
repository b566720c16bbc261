using System.CommandLine;

namespace Broker.Cli.Commands;

/// <summary><c>brokerctl revocations list|restore-epoch</c>: read the revocations in force; recover from a Redis that lost its data.</summary>
internal static class RevocationsCommand
{
    public const int DefaultLimit = 100;
    public const int MaxLimit = 1000;

    public static Command Create(CliContext context, HelpTexts help)
    {
        var revocations = new Command("revocations", "The revocations in force (AdminService.ListRevocations) and recovery after Redis lost its data (RestoreRevocationEpoch).");
        revocations.Subcommands.Add(CreateList(context, help));
        revocations.Subcommands.Add(CreateRestoreEpoch(context, help));
        help.Add(revocations, """
            Examples:
              brokerctl revocations list
              brokerctl revocations restore-epoch --reason "Redis restarted without AOF (INC-400)"
            """);
        return revocations;
    }

    private static Command CreateList(CliContext context, HelpTexts help)
    {
        var limit = new Option<int>("--limit")
        {
            Description = $"At most this many, newest first (1 to {MaxLimit}). Default: {DefaultLimit}.",
            HelpName = "N",
            DefaultValueFactory = _ => DefaultLimit,
            CustomParser = result =>
            {
                var text = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
                if (int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value) && value is >= 1 and <= MaxLimit)
                {
                    return value;
                }

                result.AddError($"--limit must be a whole number from 1 to {MaxLimit}.");
                return DefaultLimit;
            },
        };
        var output = RevokeCommand.CreateOutputOption();
        var operatorOptions = new OperatorOptions();

        var command = new Command(
            "list",
            "List the revocations still in force on the node asked, newest first: id, selector, actor, when revoked, when the entry lapses "
            + "(no token it can match outlives it), reason. Role: responder or auditor.");
        command.Options.Add(limit);
        command.Options.Add(output);
        operatorOptions.AddTo(command);
        help.Add(command, """
            Examples:
              brokerctl revocations list --dev
              brokerctl revocations list --limit 20
              brokerctl revocations list --output json | jq -r '.revocations[] | select(.selector.type == "task") | .selector.task_id'
            """);

        command.SetAction(BrokerCtl.Guarded(context, async (parseResult, cancellationToken) =>
        {
            var (address, token) = operatorOptions.Resolve(parseResult, context);
            using var api = new AdminApi(address, token);
            var response = await api.ListAsync(parseResult.GetValue(limit), cancellationToken);
            if (parseResult.GetValue(output) == OutputFormat.Json)
            {
                RevocationOutput.WriteJson(context.Out, response.Revocations);
            }
            else
            {
                RevocationOutput.WriteTable(context.Out, response.Revocations, context.Colour);
            }

            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command CreateRestoreEpoch(CliContext context, HelpTexts help)
    {
        var reason = RevokeCommand.ReasonOption("Why; recorded with the epoch's cut-off revocation and in the audit log.");
        var output = RevokeCommand.CreateOutputOption();
        var operatorOptions = new OperatorOptions();

        var command = new Command(
            "restore-epoch",
            "Recover after Redis lost its data. Revocations live in Redis under a revocation epoch; when the epoch key is missing "
            + "(Redis restarted without persistence, was flushed, or failed over to an empty replica) no node can know what was revoked, "
            + "so every node refuses ALL issuance and ALL introspection, and subscribed resource servers refuse every token. This command "
            + "writes a new epoch AND revokes every token issued before now, on every workload: what was revoked before the loss is "
            + "unknown, so every token that might have been revoked is. Agents then need fresh credentials (they re-attest and ask again); "
            + "nothing issued from now on is affected. Run it once, after Redis is back and persistence is fixed. Role: responder.");
        command.Options.Add(reason);
        command.Options.Add(output);
        operatorOptions.AddTo(command);
        help.Add(command, """
            Examples:
              # Every node answers REVOCATION_STATE_LOST (UNAVAILABLE) after a Redis restart that lost its data:
              brokerctl revocations restore-epoch --reason "Redis restarted without AOF (INC-400)"

            What it prints: the new epoch and the cut-off revocation ("before <now>") it recorded.
            Before running it, make Redis durable again (appendonly yes, appendfsync always or everysec),
            or the next restart will need it again.
            """);

        command.SetAction(BrokerCtl.Guarded(context, async (parseResult, cancellationToken) =>
        {
            var (address, token) = operatorOptions.Resolve(parseResult, context);
            using var api = new AdminApi(address, token);
            var response = await api.RestoreEpochAsync(parseResult.GetValue(reason)!, cancellationToken);
            if (parseResult.GetValue(output) == OutputFormat.Json)
            {
                RevocationOutput.WriteJson(context.Out, response);
                return ExitCodes.Success;
            }

            context.Out.WriteLine($"restored revocation epoch {response.Epoch}; every token issued before "
                + $"{(response.Cutoff?.Selector?.IssuedBefore?.Time is { } cutoff ? RevocationOutput.Time(cutoff) : "now")} is revoked — agents must ask for new credentials");
            if (response.Cutoff is { } revocation)
            {
                context.Out.WriteLine();
                RevocationOutput.WriteTable(context.Out, [revocation], context.Colour);
            }

            return ExitCodes.Success;
        }));
        return command;
    }
}
