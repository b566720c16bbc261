using System.CommandLine;
using Broker.Cli.Internal;
using Broker.V1;

namespace Broker.Cli.Commands;

/// <summary><c>brokerctl leases list|revoke</c>: downstream-credential leases (docs/secrets.md).</summary>
internal static class LeasesCommand
{
    public static Command Create(CliContext context, HelpTexts help)
    {
        var leases = new Command("leases", "Downstream-credential leases (e.g. PostgreSQL logins): list the live ones, revoke by lease, task or agent.");
        leases.Subcommands.Add(CreateList(context, help));
        leases.Subcommands.Add(CreateRevoke(context, help));
        help.Add(leases, """
            Examples:
              brokerctl leases list --dev
              brokerctl leases list --task T-1
              brokerctl leases revoke --lease 3q2-7wEjRmKpX0cQh1JtYA --reason "INC-311"
              brokerctl leases revoke --task T-1 --reason "INC-311: agent chained tools outside its plan"
            """);
        return leases;
    }

    private static Command CreateList(CliContext context, HelpTexts help)
    {
        var task = new Option<string>("--task") { Description = "Only this task's leases.", HelpName = "TASK_ID" };
        var agent = new Option<string>("--agent") { Description = "Only this workload's leases (its SPIFFE ID or workload id).", HelpName = "WORKLOAD_ID" };
        var operatorOptions = new OperatorOptions();
        var command = new Command("list", "Live leases, soonest to expire first: lease id, engine, role, login, task, phase, agent, expiry. Never a password. Role: responder or auditor.");
        command.Options.Add(task);
        command.Options.Add(agent);
        operatorOptions.AddTo(command);
        command.SetAction(BrokerCtl.Guarded(context, async (parseResult, cancellationToken) =>
        {
            var (address, token) = operatorOptions.Resolve(parseResult, context);
            using var api = new AdminApi(address, token);
            var response = await api.ListLeasesAsync(new ListLeasesRequest { TaskId = parseResult.GetValue(task) ?? "", Agent = parseResult.GetValue(agent) ?? "" }, cancellationToken);
            if (response.Leases.Count == 0)
            {
                context.Out.WriteLine("no live leases");
                return ExitCodes.Success;
            }

            var now = context.Time.GetUtcNow();
            OutputFormat.WriteColumns(
                context.Out,
                ["LEASE_ID", "ENGINE", "ROLE", "LOGIN", "TASK", "PHASE", "AGENT", "EXPIRES_AT"],
                response.Leases.Select(lease =>
                {
                    var expires = lease.ExpiresAt.ToDateTimeOffset();
                    return (IReadOnlyList<string>)
                    [
                        lease.LeaseId, lease.Engine, lease.Role, lease.Login, lease.TaskId, IssueCommand.PhaseName(lease.Phase), lease.Subject,
                        $"{expires:yyyy-MM-ddTHH:mm:ssZ} (in {Durations.Format(expires - now)})",
                    ];
                }).ToList(),
                context.Colour);

            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command CreateRevoke(CliContext context, HelpTexts help)
    {
        var lease = new Option<string>("--lease") { Description = "One lease (its id, as leases list shows it).", HelpName = "LEASE_ID" };
        var task = new Option<string>("--task") { Description = "Every lease (and token) of a task.", HelpName = "TASK_ID" };
        var agent = new Option<string>("--agent") { Description = "Every lease (and token) of a workload issued so far.", HelpName = "WORKLOAD_ID" };
        var reason = new Option<string>("--reason") { Description = "Why; recorded in the audit log.", HelpName = "TEXT", Required = true };
        var operatorOptions = new OperatorOptions();
        var command = new Command(
            "revoke",
            "End leases now: their logins are dropped and their open sessions terminated, on whichever node sees the revocation first. "
            + "A lease id is a token id, so this is AdminService.Revoke; tokens the selector matches are revoked too. Role: responder.");
        command.Options.Add(lease);
        command.Options.Add(task);
        command.Options.Add(agent);
        command.Options.Add(reason);
        operatorOptions.AddTo(command);
        command.Validators.Add(result =>
        {
            var named = new[] { lease, task, agent }.Count(o => result.GetResult(o) is not null);
            if (named != 1)
            {
                result.AddError("Name exactly one of --lease, --task or --agent.");
            }
        });
        command.SetAction(BrokerCtl.Guarded(context, async (parseResult, cancellationToken) =>
        {
            var selector = parseResult.GetValue(lease) is { } id ? new RevocationSelector { TokenId = id }
                : parseResult.GetValue(task) is { } taskId ? new RevocationSelector { TaskId = taskId }
                : new RevocationSelector { Agent = parseResult.GetValue(agent)! };
            var (address, token) = operatorOptions.Resolve(parseResult, context);
            using var api = new AdminApi(address, token);
            var response = await api.RevokeAsync(new RevokeRequest { Reason = parseResult.GetValue(reason)!, Selectors = { selector } }, cancellationToken);
            foreach (var entry in response.Revocations)
            {
                context.Out.WriteLine($"revoked {entry.Id}: matching leases end within the revocation bound");
            }

            return ExitCodes.Success;
        }));
        return command;
    }
}
