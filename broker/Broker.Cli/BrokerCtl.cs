using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using Broker.Cli.Commands;
using Broker.Client;

namespace Broker.Cli;

/// <summary>
/// brokerctl: the command line for Broker. <see cref="RunAsync(string[], TextWriter, TextWriter, CancellationToken)"/>
/// runs one command line in-process and returns its exit code (<see cref="ExitCodes"/>).
/// </summary>
public static class BrokerCtl
{
    /// <summary>Runs <paramref name="args"/> with the console's stdin; output and errors go to the given writers.</summary>
    public static Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken = default) =>
        RunAsync(args, CliContext.ForConsole(stdout, stderr), cancellationToken);

    internal static async Task<int> RunAsync(string[] args, CliContext context, CancellationToken cancellationToken = default)
    {
        var root = BuildRootCommand(context);
        var parseResult = root.Parse(args);

        // System.CommandLine exits 1 on a parse error; brokerctl keeps 1 for refusals, so usage
        // errors are reported here and exit 2.
        if (parseResult.Action is ParseErrorAction)
        {
            foreach (var error in parseResult.Errors)
            {
                context.Error.WriteLine($"brokerctl: {error.Message}");
            }

            var command = parseResult.CommandResult.Command;
            var path = command == root ? "brokerctl" : CommandPath(parseResult);
            context.Error.WriteLine($"Run '{path} --help' for usage.");
            return ExitCodes.Usage;
        }

        var invocation = new InvocationConfiguration
        {
            Output = context.Out,
            Error = context.Error,
            EnableDefaultExceptionHandler = false,
        };
        return await parseResult.InvokeAsync(invocation, cancellationToken);
    }

    internal static RootCommand BuildRootCommand(CliContext context)
    {
        var help = new HelpTexts();
        var root = new RootCommand(
            "brokerctl: talk to Broker, the credential broker for AI agents. Ask for a task- and "
            + "phase-scoped credential, end a task, mint dev JWT-SVIDs, inspect tokens and validate policy files; during an incident, "
            + "revoke credentials, list revocations and check whether a token is still active.");
        help.Add(root, """
            Examples:
              # Start a dev broker in another terminal, then get a planning token:
              dotnet run --project broker/Broker.Server -- --dev
              brokerctl issue --dev --agent spiffe://dev.local/agents/demo \
                --task T-1 --phase planning --scope repo:read --audience https://api.dev.local

              brokerctl token decode "$TOKEN"
              brokerctl policy validate deploy/policy/sample-policy.yaml

              # During an incident (operator token from $BROKER_OPERATOR_TOKEN, or --dev):
              brokerctl revoke task T-1 --reason "INC-311: agent chained tools outside its plan"
              brokerctl introspect "$TOKEN"
              brokerctl revocations list
            """);

        root.Subcommands.Add(IssueCommand.Create(context, help));
        root.Subcommands.Add(EndTaskCommand.Create(context, help));
        root.Subcommands.Add(DevCommand.Create(context, help));
        root.Subcommands.Add(TokenCommand.Create(context, help));
        root.Subcommands.Add(PolicyCommand.Create(context, help));
        root.Subcommands.Add(RevokeCommand.Create(context, help));
        root.Subcommands.Add(RevocationsCommand.Create(context, help));
        root.Subcommands.Add(IntrospectCommand.Create(context, help));
        RiskCommand.AddTo(root, context, help);
        root.Subcommands.Add(ApprovalsCommand.Create(context, help));
        FreezeCommand.AddTo(root, context, help);
        root.Subcommands.Add(AuditCommand.Create(context, help));
        root.Subcommands.Add(IssueSecretCommand.Create(context, help));
        root.Subcommands.Add(LeasesCommand.Create(context, help));
        root.Subcommands.Add(OperatorTokenCommand.Create(context, help));
        root.Subcommands.Add(OperatorKeyCommand.Create(context, help));

        foreach (var option in root.Options)
        {
            if (option is HelpOption helpOption && helpOption.Action is HelpAction defaultHelp)
            {
                helpOption.Action = new HelpWithExamplesAction(defaultHelp, help);
            }
        }

        return root;
    }

    /// <summary>
    /// Wraps a command body so every failure becomes one line on stderr and its exit code.
    /// Nothing here prints a token: refusal messages come from the broker, which never echoes one.
    /// </summary>
    internal static Func<ParseResult, CancellationToken, Task<int>> Guarded(CliContext context, Func<ParseResult, CancellationToken, Task<int>> body) =>
        async (parseResult, cancellationToken) =>
        {
            try
            {
                return await body(parseResult, cancellationToken);
            }
            catch (CliException ex)
            {
                context.Error.WriteLine($"brokerctl: {ex.Message}");
                return ex.ExitCode;
            }
            catch (BrokerRefusalException ex)
            {
                return ReportRefusal(context.Error, ex.Refusal);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                context.Error.WriteLine($"brokerctl: {ex.Message}");
                return ExitCodes.LocalError;
            }
        };

    /// <summary>Prints <c>REASON: message</c> and the metadata; returns 3 when the broker gave no decision, else 1.</summary>
    internal static int ReportRefusal(TextWriter stderr, BrokerRefusal refusal)
    {
        var status = UpperSnake(refusal.Status.ToString());
        stderr.WriteLine($"{refusal.Reason ?? status}: {refusal.Message}");
        stderr.WriteLine($"  status: {status}");
        foreach (var (key, value) in refusal.Metadata.OrderBy(pair => pair.Key, StringComparer.Ordinal))
        {
            stderr.WriteLine($"  {key}: {value}");
        }

        return refusal.IsUnavailable ? ExitCodes.Unavailable : ExitCodes.Refused;
    }

    private static string CommandPath(ParseResult parseResult)
    {
        var names = new List<string>();
        for (var result = parseResult.CommandResult; result is not null; result = result.Parent as System.CommandLine.Parsing.CommandResult)
        {
            names.Add(result.Command is RootCommand ? "brokerctl" : result.Command.Name);
        }

        names.Reverse();
        return string.Join(' ', names);
    }

    // PermissionDenied -> PERMISSION_DENIED, the spelling of the gRPC spec and of our docs.
    private static string UpperSnake(string pascal) =>
        string.Concat(pascal.Select((c, i) => i > 0 && char.IsUpper(c) ? "_" + c : char.ToUpperInvariant(c).ToString()));

    /// <summary>The default help, followed by the command's examples and the exit codes.</summary>
    private sealed class HelpWithExamplesAction(HelpAction inner, HelpTexts texts) : SynchronousCommandLineAction
    {
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult parseResult)
        {
            var exitCode = inner.Invoke(parseResult);
            var output = parseResult.InvocationConfiguration.Output;
            if (texts.TryGet(parseResult.CommandResult.Command, out var examples))
            {
                output.WriteLine(examples.TrimEnd());
                output.WriteLine();
            }

            output.WriteLine(ExitCodes.HelpText.TrimEnd());
            output.WriteLine();
            return exitCode;
        }
    }
}

/// <summary>Per-command text shown after the generated help (examples, notes).</summary>
internal sealed class HelpTexts
{
    private readonly Dictionary<Command, string> _texts = new(ReferenceEqualityComparer.Instance);

    public void Add(Command command, string text) => _texts[command] = text;

    public bool TryGet(Command command, out string text) => _texts.TryGetValue(command, out text!);
}
