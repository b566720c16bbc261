using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Text.RegularExpressions;
using Broker.V1;
using Timestamp = Google.Protobuf.WellKnownTypes.Timestamp;

namespace Broker.Cli.Commands;

/// <summary><c>brokerctl revoke token|task|phase|agent|domain|before</c>: one AdminService.Revoke call.</summary>
internal static partial class RevokeCommand
{
    public const int MaxReasonLength = 512;

    public static Command Create(CliContext context, HelpTexts help)
    {
        var revoke = new Command(
            "revoke",
            "Revoke credentials now (AdminService.Revoke, role responder): a token, a task, one phase of a task, an agent, a trust domain, "
            + "or everything issued before a moment. Returns only once the revocation is durable in Redis; every broker node and every "
            + "resource server using the Broker SDK then refuses the matching tokens within milliseconds, not at expiry. Idempotent.");
        revoke.Subcommands.Add(CreateToken(context, help));
        revoke.Subcommands.Add(CreateTask(context, help));
        revoke.Subcommands.Add(CreatePhase(context, help));
        revoke.Subcommands.Add(CreateAgent(context, help));
        revoke.Subcommands.Add(CreateDomain(context, help));
        revoke.Subcommands.Add(CreateBefore(context, help));
        help.Add(revoke, """
            Examples:
              brokerctl revoke token HRSSV-Zrn9Xssl2BV_W6hA --reason "token pasted in a ticket (SEC-101)"
              brokerctl revoke task incident-7 --reason "agent chained tools outside its plan"
              brokerctl revoke agent spiffe://example.org/agents/deployer --reason "runtime protection: critical"
              brokerctl revoke before 2030-01-01T10:42:00Z --reason "signing host compromised at 10:42"

            Operator credentials: --operator-token TOKEN, $BROKER_OPERATOR_TOKEN, or --dev against a dev broker.
            See docs/incident-response.md for what to type in each situation.
            """);
        return revoke;
    }

    private static Command CreateToken(CliContext context, HelpTexts help)
    {
        var id = Target("TOKEN_ID", "The token's id (its jti claim; 'token_id' in issue's output, 'brokerctl token decode' shows it).");
        return Build(context, help, "token", "Revoke one token by its id (jti). Use when a single credential leaked.", [id],
            (parseResult, _) => new RevocationSelector { TokenId = parseResult.GetValue(id)! },
            """
            Examples:
              brokerctl revoke token HRSSV-Zrn9Xssl2BV_W6hA --reason "token pasted in a ticket (SEC-101)"
              brokerctl issue ... --token-only | brokerctl token decode - | jq -r .claims.jti
            """);
    }

    private static Command CreateTask(CliContext context, HelpTexts help)
    {
        var task = Target("TASK_ID", "The task whose tokens to revoke.");
        return Build(context, help, "task", "Revoke every token of a task, in every phase, and end the task so nothing more is issued for it.", [task],
            (parseResult, _) => new RevocationSelector { TaskId = parseResult.GetValue(task)! },
            """
            Examples:
              brokerctl revoke task incident-7 --reason "agent chained tools outside its plan"
              brokerctl revoke task deploy-42 --reason "INC-311" --output json | jq -r '.revocations[0].id'
            """);
    }

    private static Command CreatePhase(CliContext context, HelpTexts help)
    {
        var task = Target("TASK_ID", "The task.");
        var phase = IssueCommand.PhaseOption();
        phase.Description = "The phase whose tokens to revoke: planning, execution or recovery.";
        return Build(context, help, "phase", "Revoke every token one phase of a task was issued up to now; the task's other phases keep theirs.", [task, phase],
            (parseResult, _) => new RevocationSelector
            {
                TaskPhase = new TaskPhaseTarget { TaskId = parseResult.GetValue(task)!, Phase = IssueCommand.ParsePhase(parseResult.GetValue(phase)!) },
            },
            """
            Examples:
              # Stop a task acting on production, but let it keep planning:
              brokerctl revoke phase deploy-42 --phase execution --reason "unapproved change window"
            """);
    }

    private static Command CreateAgent(CliContext context, HelpTexts help)
    {
        var agent = Target("WORKLOAD_ID", "The workload: its SPIFFE ID, or the subject an OIDC workload token maps to.");
        return Build(context, help, "agent", "Revoke every token a workload was issued up to now, across all its tasks. Tokens it is issued later are not affected: "
            + "to stop it getting new ones, change policy or report risk.", [agent],
            (parseResult, _) => new RevocationSelector { Agent = parseResult.GetValue(agent)! },
            """
            Examples:
              brokerctl revoke agent spiffe://example.org/agents/deployer --reason "runtime protection: critical, INC-312"
            """);
    }

    private static Command CreateDomain(CliContext context, HelpTexts help)
    {
        var domain = Target("TRUST_DOMAIN", "A SPIFFE trust domain name, e.g. example.org (not a spiffe:// ID).");
        domain.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string>() is { } value && value.Contains("://", StringComparison.Ordinal))
            {
                result.AddError("TRUST_DOMAIN is the trust domain's name, e.g. example.org, not a URI; to revoke one workload use 'brokerctl revoke agent'.");
            }
        });
        return Build(context, help, "domain", "Revoke every token issued up to now to every workload of a SPIFFE trust domain. Use when the domain's SPIRE "
            + "server or signing key is compromised; also remove the domain from policy so nothing more is issued.", [domain],
            (parseResult, _) => new RevocationSelector { TrustDomain = parseResult.GetValue(domain)! },
            """
            Examples:
              brokerctl revoke domain partner.example.net --reason "partner SPIRE server compromised (SEC-120)"
            """);
    }

    private static Command CreateBefore(CliContext context, HelpTexts help)
    {
        var time = new Argument<DateTimeOffset>("TIME")
        {
            Description = "Tokens issued (iat) before this moment are revoked: an RFC 3339 time with a zone, e.g. 2030-01-01T10:42:00Z or "
                + "2030-01-01T11:42:00+01:00, or 'now'. A time in the future is refused by the broker.",
            CustomParser = result => ParseTime(result, context.Time),
        };
        var agent = new Option<string>("--agent")
        {
            Description = "Only this workload's tokens (SPIFFE ID or mapped OIDC subject). Default: every workload's.",
            HelpName = "WORKLOAD_ID",
        };
        agent.Validators.Add(result => CheckText(result, result.GetValueOrDefault<string>(), "--agent"));
        return Build(context, help, "before", "Revoke every token issued before a moment, globally or for one agent. Use when you know when the compromise "
            + "began but not which tokens it reached.", [time, agent],
            (parseResult, _) =>
            {
                var target = new IssuedBeforeTarget { Time = Timestamp.FromDateTimeOffset(parseResult.GetValue(time)) };
                if (parseResult.GetValue(agent) is { } workload)
                {
                    target.Agent = workload;
                }

                return new RevocationSelector { IssuedBefore = target };
            },
            """
            Examples:
              # Everything issued before 10:42 UTC today:
              brokerctl revoke before "$(date -u +%Y-%m-%d)T10:42:00Z" --reason "signing host compromised at 10:42 (SEC-130)"
              brokerctl revoke before now --agent spiffe://example.org/agents/deployer --reason "rotate after INC-312"

            A time without a zone is refused: during an incident, "10:42" in whose clock matters.
            """);
    }

    private static Command Build(
        CliContext context,
        HelpTexts help,
        string name,
        string description,
        Symbol[] targets,
        Func<ParseResult, CliContext, RevocationSelector> selector,
        string examples)
    {
        var reason = ReasonOption("Why; recorded with the revocation and in the audit log (credential.revoked) with your operator name.");
        var output = CreateOutputOption();
        var operatorOptions = new OperatorOptions();

        var command = new Command(name, description);
        foreach (var target in targets)
        {
            switch (target)
            {
                case Argument argument:
                    command.Arguments.Add(argument);
                    break;
                case Option option:
                    command.Options.Add(option);
                    break;
            }
        }

        command.Options.Add(reason);
        command.Options.Add(output);
        operatorOptions.AddTo(command);
        help.Add(command, examples);

        command.SetAction(BrokerCtl.Guarded(context, async (parseResult, cancellationToken) =>
        {
            var request = new RevokeRequest { Reason = parseResult.GetValue(reason)! };
            request.Selectors.Add(selector(parseResult, context));
            var (address, token) = operatorOptions.Resolve(parseResult, context);
            using var api = new AdminApi(address, token);
            var response = await api.RevokeAsync(request, cancellationToken);
            if (parseResult.GetValue(output) == OutputFormat.Json)
            {
                RevocationOutput.WriteJson(context.Out, response.Revocations);
            }
            else
            {
                RevocationOutput.WriteConfirmations(context.Out, response.Revocations);
                context.Out.WriteLine();
                RevocationOutput.WriteTable(context.Out, response.Revocations, context.Colour);
            }

            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>--reason: required, not blank, at most <see cref="MaxReasonLength"/> characters.</summary>
    public static Option<string> ReasonOption(string description)
    {
        var reason = new Option<string>("--reason")
        {
            Description = $"{description} Required; at most {MaxReasonLength} characters.",
            HelpName = "TEXT",
            Required = true,
        };
        reason.Validators.Add(result =>
        {
            var value = result.GetValueOrDefault<string>();
            if (string.IsNullOrWhiteSpace(value))
            {
                result.AddError("--reason is empty: say why, e.g. --reason \"INC-311: agent exfiltrating tickets\".");
            }
            else if (value.Length > MaxReasonLength)
            {
                result.AddError($"--reason is longer than {MaxReasonLength} characters.");
            }
        });
        return reason;
    }

    /// <summary>--output table|json; the table is columns, the JSON one object.</summary>
    public static Option<string> CreateOutputOption()
    {
        var output = OutputFormat.CreateOption();
        output.Description = "How to print the result: 'table' (readable lines and columns) or 'json' (one object).";
        return output;
    }

    /// <summary>Reads RFC 3339 (a date, 'T' or a space, a time, optional fraction, and Z or an offset) or 'now'.</summary>
    internal static DateTimeOffset ParseTime(ArgumentResult result, TimeProvider time)
    {
        var text = result.Tokens.Count == 1 ? result.Tokens[0].Value.Trim() : "";
        if (string.Equals(text, "now", StringComparison.OrdinalIgnoreCase))
        {
            return time.GetUtcNow();
        }

        var match = Rfc3339().Match(text);
        if (match.Success)
        {
            // .NET keeps 7 fractional digits; RFC 3339 allows more.
            var fraction = match.Groups["fraction"].Value;
            var normalized = match.Groups["date"].Value + "T" + match.Groups["time"].Value
                + (fraction.Length > 0 ? "." + fraction[..Math.Min(fraction.Length, 7)] : "")
                + (match.Groups["zone"].Value is "z" or "Z" ? "+00:00" : match.Groups["zone"].Value);
            if (DateTimeOffset.TryParseExact(normalized, ["yyyy-MM-dd'T'HH:mm:sszzz", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFzzz"], CultureInfo.InvariantCulture, DateTimeStyles.None, out var parsed))
            {
                return parsed.ToUniversalTime();
            }
        }

        result.AddError($"TIME '{(text.Length > 64 ? text[..64] + "…" : text)}' is not an RFC 3339 time with a zone or 'now': write e.g. 2030-01-01T10:42:00Z or 2030-01-01T11:42:00+01:00.");
        return default;
    }

    private static Argument<string> Target(string name, string description)
    {
        var argument = new Argument<string>(name) { Description = description };
        argument.Validators.Add(result => CheckText(result, result.GetValueOrDefault<string>(), name));
        return argument;
    }

    private static void CheckText(SymbolResult result, string? value, string name)
    {
        if (value is not null && (string.IsNullOrWhiteSpace(value) || value.Any(char.IsControl)))
        {
            result.AddError($"{name} is empty or holds control characters.");
        }
    }

    [GeneratedRegex(@"^(?<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ](?<time>[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.(?<fraction>[0-9]{1,9}))?(?<zone>[Zz]|[+-][0-9]{2}:[0-9]{2})$", RegexOptions.CultureInvariant)]
    private static partial Regex Rfc3339();
}
