using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Broker.Client;
using Broker.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Broker.Cli.Commands;

/// <summary>
/// <c>brokerctl risk show|clear</c> and <c>brokerctl signals tail</c>: the operator side of the
/// risk gate (RiskAdminService). Show and clear are identity state; tail reads the telemetry
/// stream and needs the separate telemetry-reader role.
/// </summary>
internal static class RiskCommand
{
    /// <summary>Adds <c>risk</c> and <c>signals</c> to the root command.</summary>
    public static void AddTo(RootCommand root, CliContext context, HelpTexts help)
    {
        root.Subcommands.Add(Create(context, help));
        root.Subcommands.Add(CreateSignals(context, help));
    }

    public static Command Create(CliContext context, HelpTexts help)
    {
        var risk = new Command("risk", "Runtime risk the broker holds for an agent or task (RiskAdminService): show it, or clear it after review.");
        risk.Subcommands.Add(CreateShow(context, help));
        risk.Subcommands.Add(CreateClear(context, help));
        help.Add(risk, """
            Examples:
              brokerctl risk show spiffe://example.org/agents/deployer/7
              brokerctl risk show --task T-42
              brokerctl risk clear spiffe://example.org/agents/deployer/7 --reason "INC-311: detector false positive, reviewed"
            """);
        return risk;
    }

    /// <summary><c>brokerctl signals tail</c>; registered as its own top-level command by <see cref="CreateSignals"/>.</summary>
    public static Command CreateSignals(CliContext context, HelpTexts help)
    {
        var signals = new Command("signals", "The runtime-risk telemetry stream: what runtime-protection services reported, evidence references included.");
        var limit = new Option<int>("--limit") { Description = "How many of the latest signals to print first (1 to 1000). Default: 20.", HelpName = "N", DefaultValueFactory = _ => 20 };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new signals as they arrive (polls once a second) until interrupted." };
        var output = RevokeCommand.CreateOutputOption();
        var operatorOptions = new OperatorOptions();
        var tail = new Command("tail", "Print the latest signals (oldest first). Role: telemetry-reader (auditors read the audit log, not this).");
        tail.Options.Add(limit);
        tail.Options.Add(follow);
        tail.Options.Add(output);
        operatorOptions.AddTo(tail);
        tail.Validators.Add(result =>
        {
            if (result.GetValue(limit) is < 1 or > 1000)
            {
                result.AddError("--limit must be from 1 to 1000.");
            }
        });
        help.Add(tail, """
            Examples:
              brokerctl signals tail --dev
              brokerctl signals tail --follow --output json | jq 'select(.level == "critical")'
            """);
        tail.SetAction(BrokerCtl.Guarded(context, async (parseResult, cancellationToken) =>
        {
            var (address, token) = operatorOptions.Resolve(parseResult, context);
            using var api = new RiskApi(address, token);
            var json = parseResult.GetValue(output) == OutputFormat.Json;
            var page = await api.CallAsync("read telemetry (role telemetry-reader)", (client, o) => client.TailSignalsAsync(new TailSignalsRequest { Limit = parseResult.GetValue(limit) }, o).ResponseAsync, cancellationToken);
            Print(context, page, json, header: true);
            while (parseResult.GetValue(follow) && !cancellationToken.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), context.Time, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                var cursor = page.Cursor;
                page = await api.CallAsync("read telemetry (role telemetry-reader)", (client, o) => client.TailSignalsAsync(new TailSignalsRequest { Limit = 1000, After = cursor }, o).ResponseAsync, cancellationToken);
                Print(context, page, json, header: false);
            }

            return ExitCodes.Success;
        }));
        signals.Subcommands.Add(tail);
        return signals;
    }

    private static Command CreateShow(CliContext context, HelpTexts help)
    {
        var agent = new Argument<string?>("agent") { Description = "The agent's workload id.", Arity = ArgumentArity.ZeroOrOne };
        var task = new Option<string>("--task") { Description = "Show a task's risk instead of an agent's.", HelpName = "TASK_ID" };
        var output = RevokeCommand.CreateOutputOption();
        var operatorOptions = new OperatorOptions();
        var command = new Command("show", "The current risk (latest valid signal) and any issuance freeze of an agent or a task. Role: responder or auditor.");
        command.Arguments.Add(agent);
        command.Options.Add(task);
        command.Options.Add(output);
        operatorOptions.AddTo(command);
        command.Validators.Add(result => ExactlyOne(result, result.GetValue(agent), result.GetValue(task)));
        help.Add(command, """
            Examples:
              brokerctl risk show --dev spiffe://dev.local/agents/demo
              brokerctl risk show --task T-42 --output json
            """);
        command.SetAction(BrokerCtl.Guarded(context, async (parseResult, cancellationToken) =>
        {
            var (address, token) = operatorOptions.Resolve(parseResult, context);
            using var api = new RiskApi(address, token);
            var request = parseResult.GetValue(task) is { } taskId ? new GetRiskRequest { TaskId = taskId } : new GetRiskRequest { Agent = parseResult.GetValue(agent)! };
            var response = await api.CallAsync("show risk (role responder or auditor)", (client, o) => client.GetRiskAsync(request, o).ResponseAsync, cancellationToken);
            if (parseResult.GetValue(output) == OutputFormat.Json)
            {
                context.Out.WriteLine(new JsonObject { ["current"] = Json(response.Current), ["freeze"] = Json(response.Freeze) }.ToJsonString());
            }
            else
            {
                OutputFormat.WriteTable(context.Out,
                [
                    ("risk", response.Current is { } current
                        ? $"{Level(current.Level)} (signal {current.SignalId}, {current.Detector}, score {current.Score.ToString(CultureInfo.InvariantCulture)}, from {current.Source}, valid until {Time(current.ValidUntil)})"
                        : "unknown (no valid signal)"),
                    ("frozen", response.Freeze is { } freeze
                        ? $"yes, by signal {freeze.SignalId} ({Level(freeze.Level)}, observed {Time(freeze.ObservedAt)}); clear with 'brokerctl risk clear'"
                        : "no"),
                ]);
            }

            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command CreateClear(CliContext context, HelpTexts help)
    {
        var agent = new Argument<string?>("agent") { Description = "The agent's workload id.", Arity = ArgumentArity.ZeroOrOne };
        var task = new Option<string>("--task") { Description = "Clear a task's risk instead of an agent's.", HelpName = "TASK_ID" };
        var reason = new Option<string>("--reason") { Description = "Why (required; recorded in the audit log as risk.cleared).", HelpName = "TEXT", Required = true };
        var operatorOptions = new OperatorOptions();
        var command = new Command(
            "clear",
            "Forget an agent's or task's current risk and lift its freeze; signals observed before now are then ignored for it. "
            + "Revoked credentials stay revoked; execution waits for a fresh signal where policy fails closed. Role: responder.");
        command.Arguments.Add(agent);
        command.Options.Add(task);
        command.Options.Add(reason);
        operatorOptions.AddTo(command);
        command.Validators.Add(result => ExactlyOne(result, result.GetValue(agent), result.GetValue(task)));
        help.Add(command, """
            Examples:
              brokerctl risk clear spiffe://example.org/agents/deployer/7 --reason "INC-311 reviewed: false positive"
              brokerctl risk clear --task T-42 --reason "INC-311 reviewed"
            """);
        command.SetAction(BrokerCtl.Guarded(context, async (parseResult, cancellationToken) =>
        {
            var (address, token) = operatorOptions.Resolve(parseResult, context);
            using var api = new RiskApi(address, token);
            var request = new ClearRiskRequest { Reason = parseResult.GetValue(reason)! };
            if (parseResult.GetValue(task) is { } taskId)
            {
                request.TaskId = taskId;
            }
            else
            {
                request.Agent = parseResult.GetValue(agent)!;
            }

            var response = await api.CallAsync("clear risk (role responder)", (client, o) => client.ClearRiskAsync(request, o).ResponseAsync, cancellationToken);
            var what = response.Lifted is { } lifted ? $"freeze by signal {lifted.SignalId} lifted" : response.Cleared is { } cleared ? $"risk from signal {cleared.SignalId} cleared" : "nothing was held; later signals only from now";
            context.Out.WriteLine($"cleared: {what}");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static void ExactlyOne(System.CommandLine.Parsing.CommandResult result, string? agent, string? task)
    {
        if ((agent is null) == (task is null))
        {
            result.AddError("Name an agent (argument) or --task TASK_ID, not both.");
        }
    }

    /// <summary>JSON Lines, or table rows (the header only before the first page: later pages of --follow add rows).</summary>
    private static void Print(CliContext context, TailSignalsResponse page, bool json, bool header)
    {
        if (!json)
        {
            if (page.Signals.Count > 0 || header)
            {
                OutputFormat.WriteColumns(
                    context.Out,
                    header ? ["OBSERVED_AT", "LEVEL", "SIGNAL", "AGENT", "TASK", "DETECTOR", "SCORE", "OUTCOME", "EVIDENCE"] : null,
                    page.Signals.Select(s => (IReadOnlyList<string>)
                    [
                        Time(s.ObservedAt),
                        Level(s.Level),
                        s.SignalId,
                        s.Agent,
                        s.TaskId.Length == 0 ? "-" : s.TaskId,
                        s.Detector,
                        s.Score.ToString(CultureInfo.InvariantCulture),
                        s.Outcome,
                        s.EvidenceRef.Length == 0 ? "-" : s.EvidenceRef,
                    ]).ToList(),
                    context.Colour);
            }

            return;
        }

        foreach (var s in page.Signals)
        {
            context.Out.WriteLine(new JsonObject
            {
                ["signal_id"] = s.SignalId,
                ["agent"] = s.Agent,
                ["task_id"] = s.TaskId.Length == 0 ? null : s.TaskId,
                ["level"] = Level(s.Level),
                ["score"] = s.Score,
                ["detector"] = s.Detector,
                ["evidence_ref"] = s.EvidenceRef.Length == 0 ? null : s.EvidenceRef,
                ["observed_at"] = Time(s.ObservedAt),
                ["valid_until"] = Time(s.ValidUntil),
                ["source"] = s.Source,
                ["received_at"] = Time(s.ReceivedAt),
                ["outcome"] = s.Outcome,
            }.ToJsonString());
        }
    }

    private static JsonObject? Json(Broker.V1.RiskRecord? record) => record is null ? null : new JsonObject
    {
        ["signal_id"] = record.SignalId,
        ["level"] = Level(record.Level),
        ["score"] = record.Score,
        ["detector"] = record.Detector,
        ["observed_at"] = Time(record.ObservedAt),
        ["valid_until"] = Time(record.ValidUntil),
        ["source"] = record.Source,
    };

    private static JsonObject? Json(RiskFreeze? freeze) => freeze is null ? null : new JsonObject
    {
        ["signal_id"] = freeze.SignalId,
        ["level"] = Level(freeze.Level),
        ["observed_at"] = Time(freeze.ObservedAt),
    };

    private static string Level(Broker.V1.RiskLevel level) => level switch
    {
        Broker.V1.RiskLevel.None => "none",
        Broker.V1.RiskLevel.Low => "low",
        Broker.V1.RiskLevel.Medium => "medium",
        Broker.V1.RiskLevel.High => "high",
        Broker.V1.RiskLevel.Critical => "critical",
        _ => "unspecified",
    };

    private static string Time(Google.Protobuf.WellKnownTypes.Timestamp? at) =>
        at is null ? "-" : at.ToDateTimeOffset().ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);

    /// <summary>One channel to RiskAdminService with the operator token; refusals become <see cref="BrokerRefusalException"/>.</summary>
    private sealed class RiskApi(string address, string token) : IDisposable
    {
        private readonly GrpcChannel _channel = GrpcChannel.ForAddress(address);

        public Task<T> CallAsync<T>(string what, Func<RiskAdminService.RiskAdminServiceClient, CallOptions, Task<T>> call, CancellationToken cancellationToken)
        {
            var options = new CallOptions(new Metadata { { "authorization", "Bearer " + token } }, DateTime.UtcNow + AdminApi.CallTimeout, cancellationToken);
            return ConnectionOptions.CallAsync(address, async () =>
            {
                try
                {
                    return await call(new RiskAdminService.RiskAdminServiceClient(_channel), options);
                }
                catch (RpcException ex) when (ex.StatusCode == StatusCode.PermissionDenied && BrokerRefusal.From(ex).Reason is null)
                {
                    throw new CliException(ExitCodes.Refused, $"PERMISSION_DENIED: the operator token lacks the role to {what}.");
                }
                catch (RpcException ex)
                {
                    throw new BrokerRefusalException(ex);
                }
            });
        }

        public void Dispose() => _channel.Dispose();
    }
}
