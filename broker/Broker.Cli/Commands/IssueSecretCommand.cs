using System.CommandLine;
using Broker.Cli.Internal;
using Broker.Client;
using Broker.V1;
using Google.Protobuf.WellKnownTypes;

namespace Broker.Cli.Commands;

/// <summary><c>brokerctl issue-secret</c>: one IssueSecret call, as an agent would make it (docs/secrets.md).</summary>
internal static class IssueSecretCommand
{
    public static Command Create(CliContext context, HelpTexts help)
    {
        var task = new Option<string>("--task") { Description = "The task the credential is for.", HelpName = "TASK_ID", Required = true };
        var phase = IssueCommand.PhaseOption();
        var engine = new Option<string>("--engine") { Description = "A secret engine named in policy (secret_engines), e.g. orders-db.", HelpName = "ENGINE", Required = true };
        var role = new Option<string>("--role") { Description = "The role the phase allows on that engine, e.g. orders_reader.", HelpName = "ROLE", Required = true };
        var ttl = IssueCommand.TtlOption("Requested lease lifetime, e.g. 90s, 5m. Default: the phase's max_lease_ttl.");
        var justification = new Option<string>("--justification") { Description = "Why; recorded in the audit log.", HelpName = "TEXT" };
        var wait = new Option<bool>("--wait") { Description = "When the credential needs approval, wait for it and print it once approved." };
        var connection = new ConnectionOptions();
        var command = new Command(
            "issue-secret",
            "Ask for a downstream credential (IssueSecret), e.g. a PostgreSQL login for one task and phase. Prints the lease id, expiry and the "
            + "credential, once: Broker keeps no copy. Meant for dev and trying things; agents call the API.");
        command.Options.Add(task);
        command.Options.Add(phase);
        command.Options.Add(engine);
        command.Options.Add(role);
        command.Options.Add(ttl);
        command.Options.Add(justification);
        command.Options.Add(wait);
        connection.AddTo(command);
        help.Add(command, """
            Examples:
              brokerctl issue-secret --dev --agent spiffe://dev.local/agents/demo \
                --task T-1 --phase planning --engine orders-db --role orders_reader
              # psql with it:
              brokerctl issue-secret --dev ... | awk '/^connection/ {print $2}' | xargs psql
            """);
        command.SetAction(BrokerCtl.Guarded(context, async (parseResult, cancellationToken) =>
        {
            var (address, attestation) = connection.Resolve(parseResult, context);
            var correlationId = connection.GetCorrelationId(parseResult);
            var request = new IssueSecretRequest
            {
                TaskId = parseResult.GetValue(task)!,
                Phase = IssueCommand.ParsePhase(parseResult.GetValue(phase)!),
                Engine = parseResult.GetValue(engine)!,
                Role = parseResult.GetValue(role)!,
                Justification = parseResult.GetValue(justification) ?? "",
                RequestedTtl = parseResult.GetValue(ttl) is { } requested ? Duration.FromTimeSpan(requested) : null,
            };
            using var client = BrokerAgentClient.Create(address, attestation);
            var response = await ConnectionOptions.CallAsync(address, () => client.IssueSecretAsync(request, correlationId, cancellationToken));
            if (response.Pending is { } pending)
            {
                context.Error.WriteLine($"pending: approval {pending.ApprovalId} required for {string.Join(' ', pending.GatedScopes)}");
                if (!parseResult.GetValue(wait))
                {
                    return ExitCodes.Pending;
                }

                response = await ConnectionOptions.CallAsync(address, () => client.WaitForSecretApprovalAsync(
                    pending.ApprovalId,
                    update => context.Error.WriteLine($"waiting: {update.Approvals} approval(s) so far"),
                    correlationId,
                    cancellationToken));
            }

            var login = response.Credential.Database;
            var expires = response.ExpiresAt.ToDateTimeOffset();
            OutputFormat.WriteTable(context.Out,
            [
                ("lease_id", response.LeaseId),
                ("engine", response.Engine),
                ("role", response.Role),
                ("phase", IssueCommand.PhaseName(response.Phase)),
                ("expires_at", $"{expires:yyyy-MM-ddTHH:mm:ssZ} (in {Durations.Format(expires - context.Time.GetUtcNow())})"),
                ("host", login.Host),
                ("port", login.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                ("database", login.Database),
                ("username", login.Username),
                ("password", login.Password),
                ("connection", $"postgresql://{login.Username}:{login.Password}@{login.Host}:{login.Port}/{login.Database}"),
            ]);
            return ExitCodes.Success;
        }));
        return command;
    }
}
