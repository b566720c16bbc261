using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Broker.Cli.Internal;
using Broker.Client;
using Broker.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Broker.Cli.Commands;

/// <summary>
/// <c>brokerctl approvals list|show|approve|deny</c>: the approver side of approval gates
/// (ApprovalAdminService). The approver is whoever the operator token names; role approver.
/// </summary>
internal static class ApprovalsCommand
{
    public static Command Create(CliContext context, HelpTexts help)
    {
        var approvals = new Command("approvals", "Requests for gated scopes waiting for a person (ApprovalAdminService): list and show them, approve or deny. Role: approver.");
        approvals.Subcommands.Add(CreateList(context, help));
        approvals.Subcommands.Add(CreateShow(context));
        approvals.Subcommands.Add(CreateApprove(context));
        approvals.Subcommands.Add(CreateDeny(context));
        help.Add(approvals, """
            Examples:
              brokerctl approvals list --dev
              brokerctl approvals show apr_0f3c... --dev
              brokerctl approvals approve apr_0f3c... --dev --as ann
              brokerctl approvals deny apr_0f3c... --reason "change freeze until Monday"
            """);
        return approvals;
    }

    private static Command CreateList(CliContext context, HelpTexts help)
    {
        var limit = new Option<int>("--limit") { Description = "At most this many (1 to 500). Default: 50.", HelpName = "N", DefaultValueFactory = _ => 50 };
        var output = RevokeCommand.CreateOutputOption();
        var operatorOptions = new OperatorOptions();
        var command = new Command("list", "Pending requests, soonest to expire first: one row each (APPROVAL_ID, AGENT, TASK, PHASE, SCOPES, VOTES, EXPIRES_AT, DIGEST) under a header line.");
        command.Options.Add(limit);
        command.Options.Add(output);
        operatorOptions.AddTo(command);
        limit.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() is < 1 or > 500)
            {
                result.AddError("--limit must be from 1 to 500.");
            }
        });
        help.Add(command, """
            Examples:
              brokerctl approvals list --dev
              brokerctl approvals list --output json | jq -r '.approval_id'
            """);
        command.SetAction(BrokerCtl.Guarded(context, async (parseResult, cancellationToken) =>
        {
            var (address, token) = operatorOptions.Resolve(parseResult, context);
            using var api = new ApprovalApi(address, token);
            var response = await api.CallAsync("list approvals (role approver)", (client, o) => client.ListApprovalsAsync(new ListApprovalsRequest { Limit = parseResult.GetValue(limit) }, o).ResponseAsync, cancellationToken);
            if (parseResult.GetValue(output) == OutputFormat.Json)
            {
                foreach (var approval in response.Approvals)
                {
                    context.Out.WriteLine(Json(approval).ToJsonString());
                }
            }
            else if (response.Approvals.Count == 0)
            {
                context.Out.WriteLine("no pending approvals");
            }
            else
            {
                OutputFormat.WriteColumns(
                    context.Out,
                    ["APPROVAL_ID", "AGENT", "TASK", "PHASE", "SCOPES", "VOTES", "EXPIRES_AT", "DIGEST"],
                    response.Approvals.Select(a => (IReadOnlyList<string>)
                    [
                        a.ApprovalId,
                        a.Agent,
                        a.TaskId,
                        IssueCommand.PhaseName(a.Phase),
                        string.Join(' ', a.Scopes),
                        $"{a.Approvals.Count}/{Needed(a)}",
                        Time(a.ExpiresAt),
                        a.RequestDigest,
                    ]).ToList(),
                    context.Colour);
            }

            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command CreateShow(CliContext context) => ForOneRequest(
        context,
        "show",
        "One request in any state: what was asked, its digest, the gates, who approved or denied, and the token it allowed.",
        "show approvals (role approver)",
        extra: [],
        (client, id, _, o) => client.GetApprovalAsync(new GetApprovalRequest { ApprovalId = id }, o).ResponseAsync);

    private static Command CreateApprove(CliContext context) => ForOneRequest(
        context,
        "approve",
        "Add your approval. You need one of the gate's approver groups, may not be the agent's owner, and count once toward a quorum. Audited as approval.approved.",
        "approve (role approver)",
        extra: [],
        (client, id, _, o) => client.ApproveAsync(new ApproveRequest { ApprovalId = id }, o).ResponseAsync);

    private static Command CreateDeny(CliContext context)
    {
        var reason = new Option<string>("--reason") { Description = "Why (required; the agent and the audit log see it).", HelpName = "TEXT", Required = true };
        return ForOneRequest(
            context,
            "deny",
            "Deny the request; the agent's wait ends with APPROVAL_DENIED and your reason. Audited as approval.denied.",
            "deny (role approver)",
            extra: [reason],
            (client, id, parseResult, o) => client.DenyAsync(new DenyRequest { ApprovalId = id, Reason = parseResult.GetValue(reason)! }, o).ResponseAsync);
    }

    /// <summary>A command acting on one approval request by id: operator credentials in, the request as it now stands out.</summary>
    private static Command ForOneRequest(
        CliContext context,
        string name,
        string description,
        string what,
        Option[] extra,
        Func<ApprovalAdminService.ApprovalAdminServiceClient, string, ParseResult, CallOptions, Task<ApprovalInfo>> call)
    {
        var id = IdArgument();
        var output = RevokeCommand.CreateOutputOption();
        var operatorOptions = new OperatorOptions();
        var command = new Command(name, description);
        command.Arguments.Add(id);
        foreach (var option in extra)
        {
            command.Options.Add(option);
        }

        command.Options.Add(output);
        operatorOptions.AddTo(command);
        command.SetAction(BrokerCtl.Guarded(context, async (parseResult, cancellationToken) =>
        {
            var (address, token) = operatorOptions.Resolve(parseResult, context);
            using var api = new ApprovalApi(address, token);
            var approval = await api.CallAsync(what, (client, o) => call(client, parseResult.GetValue(id)!, parseResult, o), cancellationToken);
            Print(context.Out, approval, parseResult.GetValue(output) == OutputFormat.Json);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Argument<string> IdArgument() => new("approval-id") { Description = "The approval id (apr_...), from 'brokerctl approvals list' or the agent's pending answer." };

    private static void Print(TextWriter output, ApprovalInfo approval, bool json)
    {
        if (json)
        {
            output.WriteLine(Json(approval).ToJsonString());
            return;
        }

        OutputFormat.WriteTable(output,
        [
            ("approval_id", approval.ApprovalId),
            ("state", State(approval.State)),
            ("digest", approval.RequestDigest),
            ("agent", approval.Agent),
            ("owner", approval.Owner.Length == 0 ? "-" : approval.Owner),
            ("task", approval.TaskId),
            ("phase", IssueCommand.PhaseName(approval.Phase)),
            ("scopes", string.Join(' ', approval.Scopes)),
            ("audience", approval.Audience),
            ("ttl", approval.Ttl is null ? "-" : Durations.Format(approval.Ttl.ToTimeSpan())),
            ("risk", approval.Risk),
            ("justification", approval.Justification.Length == 0 ? "-" : approval.Justification),
            ("gates", string.Join("; ", approval.Gates.Select(g => $"{string.Join(' ', g.Scopes)} by {string.Join('|', g.Approvers)} x{g.Quorum}"))),
            ("approved_by", approval.Approvals.Count == 0 ? "-" : string.Join(", ", approval.Approvals.Select(v => v.Approver))),
            ("denied", approval.DeniedBy.Length == 0 ? "-" : $"{approval.DeniedBy}: {approval.DenyReason}"),
            ("expires_at", Time(approval.ExpiresAt)),
            ("token_id", approval.TokenId.Length == 0 ? "-" : approval.TokenId),
        ]);
    }

    private static JsonObject Json(ApprovalInfo a) => new()
    {
        ["approval_id"] = a.ApprovalId,
        ["state"] = State(a.State),
        ["request_digest"] = a.RequestDigest,
        ["agent"] = a.Agent,
        ["owner"] = a.Owner.Length == 0 ? null : a.Owner,
        ["task_id"] = a.TaskId,
        ["phase"] = IssueCommand.PhaseName(a.Phase),
        ["scopes"] = new JsonArray([.. a.Scopes.Select(s => (JsonNode)s)]),
        ["audience"] = a.Audience,
        ["ttl_seconds"] = a.Ttl?.Seconds,
        ["risk"] = a.Risk,
        ["justification"] = a.Justification.Length == 0 ? null : a.Justification,
        ["gates"] = new JsonArray([.. a.Gates.Select(g => (JsonNode)new JsonObject
        {
            ["scopes"] = new JsonArray([.. g.Scopes.Select(s => (JsonNode)s)]),
            ["approvers"] = new JsonArray([.. g.Approvers.Select(s => (JsonNode)s)]),
            ["quorum"] = g.Quorum,
        })]),
        ["approved_by"] = new JsonArray([.. a.Approvals.Select(v => (JsonNode)v.Approver)]),
        ["denied_by"] = a.DeniedBy.Length == 0 ? null : a.DeniedBy,
        ["deny_reason"] = a.DenyReason.Length == 0 ? null : a.DenyReason,
        ["created_at"] = Time(a.CreatedAt),
        ["expires_at"] = Time(a.ExpiresAt),
        ["token_id"] = a.TokenId.Length == 0 ? null : a.TokenId,
    };

    private static int Needed(ApprovalInfo approval) => approval.Gates.Count == 0 ? 0 : approval.Gates.Max(g => g.Quorum);

    internal static string State(ApprovalState state) => state switch
    {
        ApprovalState.Pending => "pending",
        ApprovalState.Approved => "approved",
        ApprovalState.Denied => "denied",
        ApprovalState.Expired => "expired",
        ApprovalState.Consumed => "consumed",
        _ => "unspecified",
    };

    private static string Time(Google.Protobuf.WellKnownTypes.Timestamp? at) =>
        at is null ? "-" : at.ToDateTimeOffset().ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);

    /// <summary>One channel to ApprovalAdminService with the operator token; refusals become <see cref="BrokerRefusalException"/>.</summary>
    private sealed class ApprovalApi(string address, string token) : IDisposable
    {
        private readonly GrpcChannel _channel = GrpcChannel.ForAddress(address);

        public Task<T> CallAsync<T>(string what, Func<ApprovalAdminService.ApprovalAdminServiceClient, CallOptions, Task<T>> call, CancellationToken cancellationToken)
        {
            var options = new CallOptions(new Metadata { { "authorization", "Bearer " + token } }, DateTime.UtcNow + AdminApi.CallTimeout, cancellationToken);
            return ConnectionOptions.CallAsync(address, async () =>
            {
                try
                {
                    return await call(new ApprovalAdminService.ApprovalAdminServiceClient(_channel), options);
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
