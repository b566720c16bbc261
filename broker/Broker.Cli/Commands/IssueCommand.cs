using System.CommandLine;
using System.Text.Json;
using Broker.Cli.Internal;
using Broker.Client;
using Broker.V1;
using Google.Protobuf.WellKnownTypes;

namespace Broker.Cli.Commands;

/// <summary><c>brokerctl issue</c>: one IssueCredential call.</summary>
internal static class IssueCommand
{
    public const int MaxJustificationLength = 512;

    public static Command Create(CliContext context, HelpTexts help)
    {
        var task = new Option<string>("--task")
        {
            Description = "The task the credential is for, chosen by you (1 to 128 printable characters). The first workload to use a task id owns it.",
            HelpName = "TASK_ID",
            Required = true,
        };
        var phase = PhaseOption();
        var scopes = new Option<string[]>("--scope")
        {
            Description = "A scope to request; repeat for several. All must be allowed for the agent and phase, or the whole request is refused.",
            HelpName = "SCOPE",
            Required = true,
            Arity = ArgumentArity.OneOrMore,
        };
        var audience = new Option<string>("--audience")
        {
            Description = "The resource server the token is for (its aud claim), e.g. https://api.dev.local.",
            HelpName = "AUDIENCE",
            Required = true,
        };
        var ttl = TtlOption("Requested lifetime, e.g. 90s, 5m. Default: the phase maximum in policy; above it the request is refused.");
        var justification = new Option<string>("--justification")
        {
            Description = $"Why the credential is needed; recorded in the audit log (at most {MaxJustificationLength} characters).",
            HelpName = "TEXT",
        };
        justification.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string>() is { Length: > MaxJustificationLength })
            {
                result.AddError($"--justification is longer than {MaxJustificationLength} characters.");
            }
        });
        var output = OutputFormat.CreateOption();
        var tokenOnly = new Option<bool>("--token-only")
        {
            Description = "Print only the access token and a newline, for shell use: TOKEN=$(brokerctl issue ... --token-only).",
        };
        var wait = new Option<bool>("--wait")
        {
            Description = "When the scopes need approval, wait for it (printing each vote to stderr) and print the token once approved.",
        };
        var connection = new ConnectionOptions();

        var command = new Command("issue", "Ask the broker for a short-lived credential for one task and one phase (IssueCredential). Prints the token id, subject, phase, granted scopes, expiry, policy digest and the token.");
        command.Options.Add(task);
        command.Options.Add(phase);
        command.Options.Add(scopes);
        command.Options.Add(audience);
        command.Options.Add(ttl);
        command.Options.Add(justification);
        command.Options.Add(output);
        command.Options.Add(tokenOnly);
        command.Options.Add(wait);
        connection.AddTo(command);
        command.Validators.Add(result =>
        {
            if (result.GetValue(tokenOnly) && result.GetResult(output) is { Implicit: false })
            {
                result.AddError("--token-only and --output cannot be combined.");
            }
        });

        help.Add(command, """
            Examples:
              # Against the local dev broker (address and SVID from .dev/dev.json):
              brokerctl issue --dev --agent spiffe://dev.local/agents/demo \
                --task T-1 --phase planning --scope repo:read --scope tickets:read \
                --audience https://api.dev.local --ttl 5m

              # With a JWT-SVID file kept fresh by SPIRE, token only, for a script:
              TOKEN=$(brokerctl issue --broker https://broker.internal:5080 --svid-file /run/spire/svid.jwt \
                --task deploy-42 --phase execution --scope deploy:staging \
                --audience https://api.example.com --justification "ticket OPS-42" --token-only)

              # One JSON object:
              brokerctl issue ... --output json | jq -r .token_id

            The token goes to stdout only; errors and refusals go to stderr and never contain it.
            """);

        command.SetAction(BrokerCtl.Guarded(context, async (parseResult, cancellationToken) =>
        {
            var (address, attestation) = connection.Resolve(parseResult, context);
            var correlationId = connection.GetCorrelationId(parseResult);
            var request = new IssueCredentialRequest
            {
                TaskId = parseResult.GetValue(task)!,
                Phase = ParsePhase(parseResult.GetValue(phase)!),
                Audience = parseResult.GetValue(audience)!,
                Justification = parseResult.GetValue(justification) ?? "",
                RequestedTtl = parseResult.GetValue(ttl) is { } requested ? Duration.FromTimeSpan(requested) : null,
            };
            request.Scopes.AddRange(parseResult.GetValue(scopes)!);

            using var client = BrokerAgentClient.Create(address, attestation);
            var response = await ConnectionOptions.CallAsync(address, () => client.IssueAsync(request, correlationId, cancellationToken));
            if (response.Pending is { } pending)
            {
                // Gated scopes: the broker answered pending (docs/approvals.md).
                var expires = pending.ExpiresAt.ToDateTimeOffset();
                var pendingLines = new List<(string, string)>
                {
                    ("pending", "approval required for " + string.Join(' ', pending.GatedScopes)),
                    ("approval_id", pending.ApprovalId),
                    ("request_digest", pending.RequestDigest),
                    ("expires_at", $"{expires:yyyy-MM-ddTHH:mm:ssZ} (in {Durations.Format(expires - context.Time.GetUtcNow())})"),
                };
                if (!parseResult.GetValue(wait))
                {
                    OutputFormat.WriteTable(parseResult.GetValue(tokenOnly) ? context.Error : context.Out, pendingLines);
                    return ExitCodes.Pending;
                }

                OutputFormat.WriteTable(context.Error, pendingLines);
                response = await ConnectionOptions.CallAsync(address, () => client.WaitForApprovalAsync(
                    pending.ApprovalId,
                    update => context.Error.WriteLine($"waiting: {update.Approvals} approval(s) so far"),
                    correlationId,
                    cancellationToken));
            }

            if (parseResult.GetValue(tokenOnly))
            {
                context.Out.WriteLine(response.AccessToken);
            }
            else if (parseResult.GetValue(output) == OutputFormat.Json)
            {
                WriteJson(context.Out, response);
            }
            else
            {
                WriteTable(context.Out, response, context.Time.GetUtcNow());
            }

            return ExitCodes.Success;
        }));
        return command;
    }

    public static Option<string> PhaseOption()
    {
        var phase = new Option<string>("--phase")
        {
            Description = "The task phase: planning (read-mostly), execution (acts on production) or recovery (rollback and repair).",
            HelpName = "planning|execution|recovery",
            Required = true,
        };
        phase.AcceptOnlyFromAmong("planning", "execution", "recovery");
        return phase;
    }

    public static Option<TimeSpan?> TtlOption(string description, TimeSpan? defaultValue = null)
    {
        var ttl = new Option<TimeSpan?>("--ttl")
        {
            Description = description,
            HelpName = "DURATION",
            CustomParser = result =>
            {
                var text = result.Tokens.Count == 1 ? result.Tokens[0].Value : null;
                if (Durations.TryParse(text, out var value))
                {
                    return value;
                }

                result.AddError($"--ttl '{text}' is not a duration: write a whole number and s, m or h (30s, 5m, 1h).");
                return null;
            },
        };
        if (defaultValue is { } fallback)
        {
            ttl.DefaultValueFactory = _ => fallback;
        }

        return ttl;
    }

    public static string PhaseName(Phase phase) => phase switch
    {
        Phase.Planning => "planning",
        Phase.Execution => "execution",
        Phase.Recovery => "recovery",
        _ => phase.ToString(),
    };

    internal static Phase ParsePhase(string text) => text switch
    {
        "planning" => Phase.Planning,
        "execution" => Phase.Execution,
        "recovery" => Phase.Recovery,
        _ => throw CliException.Usage($"'{text}' is not a phase."),
    };

    private static void WriteTable(TextWriter output, IssueCredentialResponse response, DateTimeOffset now)
    {
        var expires = response.ExpiresAt?.ToDateTimeOffset();
        OutputFormat.WriteTable(output,
        [
            ("token_id", response.TokenId),
            ("subject", response.Subject),
            ("phase", PhaseName(response.Phase)),
            ("scopes", string.Join(' ', response.GrantedScopes)),
            ("expires_at", expires is { } at ? $"{at:yyyy-MM-ddTHH:mm:ssZ} (in {Durations.Format(at - now)})" : "-"),
            ("policy_digest", response.PolicyDigest),
            ("token_type", response.TokenType),
            ("access_token", response.AccessToken),
        ]);
    }

    private static void WriteJson(TextWriter output, IssueCredentialResponse response)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteString("token_id", response.TokenId);
            writer.WriteString("subject", response.Subject);
            writer.WriteString("phase", PhaseName(response.Phase));
            writer.WriteStartArray("granted_scopes");
            foreach (var scope in response.GrantedScopes)
            {
                writer.WriteStringValue(scope);
            }

            writer.WriteEndArray();
            if (response.ExpiresAt is { } expires)
            {
                writer.WriteString("expires_at", expires.ToDateTime());
            }
            else
            {
                writer.WriteNull("expires_at");
            }

            writer.WriteString("policy_digest", response.PolicyDigest);
            writer.WriteString("token_type", response.TokenType);
            writer.WriteString("access_token", response.AccessToken);
            writer.WriteEndObject();
        }

        output.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
    }
}
