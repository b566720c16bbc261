using System.CommandLine;
using Broker.Client;

namespace Broker.Cli.Commands;

/// <summary><c>brokerctl end-task</c>: one EndTask call.</summary>
internal static class EndTaskCommand
{
    public const int MaxReasonLength = 512;

    public static Command Create(CliContext context, HelpTexts help)
    {
        var task = new Option<string>("--task")
        {
            Description = "The task to end. Only the workload that owns it (the first to use the id) may end it.",
            HelpName = "TASK_ID",
            Required = true,
        };
        var reason = new Option<string>("--reason")
        {
            Description = $"Why the task ends; recorded in the audit log (at most {MaxReasonLength} characters).",
            HelpName = "TEXT",
        };
        reason.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string>() is { Length: > MaxReasonLength })
            {
                result.AddError($"--reason is longer than {MaxReasonLength} characters.");
            }
        });
        var connection = new ConnectionOptions();

        var command = new Command("end-task", "End a task (EndTask): the broker refuses further credentials for it. Ending an ended task succeeds.");
        command.Options.Add(task);
        command.Options.Add(reason);
        connection.AddTo(command);

        help.Add(command, """
            Examples:
              brokerctl end-task --dev --agent spiffe://dev.local/agents/demo --task T-1 --reason "done"
              brokerctl end-task --broker https://broker.internal:5080 --svid-file /run/spire/svid.jwt --task deploy-42
            """);

        command.SetAction(BrokerCtl.Guarded(context, async (parseResult, cancellationToken) =>
        {
            var (address, attestation) = connection.Resolve(parseResult, context);
            var correlationId = connection.GetCorrelationId(parseResult);
            var taskId = parseResult.GetValue(task)!;
            using var client = BrokerAgentClient.Create(address, attestation);
            var response = await ConnectionOptions.CallAsync(address, () => client.EndTaskAsync(taskId, parseResult.GetValue(reason), correlationId, cancellationToken));
            var endedAt = response.EndedAt?.ToDateTimeOffset();
            context.Out.WriteLine(endedAt is { } at ? $"ended {taskId} at {at:yyyy-MM-ddTHH:mm:ssZ}" : $"ended {taskId}");
            return ExitCodes.Success;
        }));
        return command;
    }
}
