using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Broker.Client;
using Broker.Core.Audit;
using Broker.V1;
using Timestamp = Google.Protobuf.WellKnownTypes.Timestamp;
using Grpc.Core;
using Grpc.Net.Client;

namespace Broker.Cli.Commands;

/// <summary>
/// <c>brokerctl audit ...</c>: verify, tail and query the identity audit log. Reads the segment
/// files directly, so it runs where the log is (an auditor on the host, or a copy of the files);
/// tail and query without a PATH ask a broker's AuditService instead (role auditor).
/// </summary>
internal static class AuditCommand
{
    public static Command Create(CliContext context, HelpTexts help)
    {
        var audit = new Command("audit", "Verify, tail and query the identity audit log (hash-chained segments, format in docs/audit.md).");
        audit.Subcommands.Add(CreateVerify(context, help));
        audit.Subcommands.Add(CreateTail(context, help));
        audit.Subcommands.Add(CreateQuery(context, help));
        audit.Subcommands.Add(CreateHead(context, help));
        help.Add(audit, """
            Examples:
              brokerctl audit verify /var/lib/broker/audit --checkpoint-key audit-checkpoint.pub.pem
              brokerctl audit tail /var/lib/broker/audit -n 20
              brokerctl audit query /var/lib/broker/audit --task T-1 --output json
            """);
        return audit;
    }

    private static Argument<string[]> PathsArgument() => new("PATH")
    {
        Description = "Audit folders and/or segment files (audit-NODE-NNNNNNNN.log). Every node found is checked.",
        Arity = ArgumentArity.OneOrMore,
    };

    /// <summary>For tail and query: PATH reads files; without one, the broker is asked.</summary>
    private static Argument<string[]> OptionalPathsArgument() => new("PATH")
    {
        Description = "Audit folders and/or segment files (audit-NODE-NNNNNNNN.log). Without PATH, the broker's AuditService is asked (role auditor; --broker with --operator-token or $"
            + OperatorOptions.OperatorTokenVariable + ", or --dev).",
        Arity = ArgumentArity.ZeroOrMore,
    };

    private static void AddRemote(Command command, Argument<string[]> paths, OperatorOptions operatorOptions)
    {
        operatorOptions.AddTo(command);
        command.Validators.Add(result =>
        {
            var remote = new Option[] { operatorOptions.Broker, operatorOptions.OperatorToken, operatorOptions.Dev, operatorOptions.As }
                .Any(option => result.GetResult(option) is { Implicit: false });
            if (remote && result.GetValue(paths) is { Length: > 0 })
            {
                result.AddError("Read files (PATH) or ask a broker (--broker, --operator-token, --dev), not both.");
            }
        });
    }

    private static Command CreateVerify(CliContext context, HelpTexts help)
    {
        var paths = PathsArgument();
        var key = new Option<FileInfo?>("--checkpoint-key")
        {
            Description = "The audit checkpoint PUBLIC key (PEM). Without it, signatures are checked against the key each checkpoint names, which proves integrity but not who signed.",
            HelpName = "PUBLIC_PEM",
        };
        var expectHead = new Option<FileInfo?>("--expect-head")
        {
            Description = "Signed chain heads (as 'brokerctl audit head' prints them): each node's log must reach its head with the same hash, so deleted newest records or segments are caught.",
            HelpName = "FILE",
        };
        var fetchHead = new Option<bool>("--fetch-head")
        {
            Description = "Fetch the signed chain heads from a broker (AuditService.GetHeads, role auditor; --broker with --operator-token, or --dev) and check against them.",
        };
        var acceptAcknowledged = new Option<bool>("--accept-acknowledged")
        {
            Description = "Findings an audit.tamper_acknowledged record names do not fail verification (they are still printed).",
        };
        var operatorOptions = new OperatorOptions();
        var command = new Command(
            "verify",
            "Check the hash chain, sequence numbers, signed checkpoints and (optionally) signed heads. Prints OK and exits 0, or prints every finding "
            + "(file:line: seq N: what failed) and exits 1. A record cut short by a crash is a note, not tampering.");
        command.Arguments.Add(paths);
        command.Options.Add(key);
        command.Options.Add(expectHead);
        command.Options.Add(fetchHead);
        command.Options.Add(acceptAcknowledged);
        operatorOptions.AddTo(command);
        help.Add(command, """
            Examples:
              brokerctl audit verify .dev/audit --checkpoint-key .dev/trust/audit-checkpoint.pub.pem
              brokerctl audit verify audit-node-a-00000003.log audit-node-a-00000004.log
              brokerctl audit head --broker https://broker:8443 > heads.jsonl    # keep off the host
              brokerctl audit verify /var/lib/broker/audit --expect-head heads.jsonl
              brokerctl audit verify /var/lib/broker/audit --fetch-head --broker https://broker:8443
            """);

        command.SetAction(BrokerCtl.Guarded(context, async (parseResult, cancellationToken) =>
        {
            using var publicKey = LoadPublicKey(parseResult.GetValue(key));
            var heads = new List<AuditHead>();
            if (parseResult.GetValue(expectHead) is { } headFile)
            {
                if (!headFile.Exists)
                {
                    throw CliException.Local($"head file '{headFile.FullName}' does not exist.");
                }

                heads.AddRange(AuditHeads.ReadFile(headFile.FullName));
            }

            if (parseResult.GetValue(fetchHead))
            {
                // The fleet's heads: check those of the nodes whose files were given.
                var nodes = Nodes(parseResult.GetValue(paths)!);
                heads.AddRange((await FetchHeadsAsync(context, parseResult, operatorOptions, cancellationToken)).Where(h => nodes.Contains(h.Node)));
            }

            AuditVerifyResult result;
            try
            {
                result = AuditVerifier.Verify(parseResult.GetValue(paths)!, new AuditVerifyOptions { CheckpointKey = publicKey, ExpectedHeads = heads });
            }
            catch (ArgumentException ex)
            {
                throw CliException.Local(ex.Message);
            }

            foreach (var note in result.Notes)
            {
                context.Out.WriteLine("note: " + note);
            }

            foreach (var acknowledgement in result.Acknowledgements)
            {
                context.Out.WriteLine(string.Create(
                    CultureInfo.InvariantCulture,
                    $"note: node {acknowledgement.Node}: at seq {acknowledgement.Seq} {acknowledgement.Actor ?? "an operator"} acknowledged {acknowledgement.Findings.Count} finding(s) of tampering ({acknowledgement.Reason})"));
            }

            if (result.Problems.Count > 0)
            {
                foreach (var finding in result.Problems)
                {
                    context.Out.WriteLine((result.IsAcknowledged(finding) ? "ACKNOWLEDGED: " : "TAMPERED: ") + finding);
                }

                var first = result.Unacknowledged.FirstOrDefault() ?? result.Problems[0];
                OutputFormat.WriteTable(context.Out,
                [
                    ("  file:", first.File),
                    ("  line:", first.Line.ToString(CultureInfo.InvariantCulture)),
                    ("  seq:", first.Seq is { } seq ? seq.ToString(CultureInfo.InvariantCulture) : "-"),
                    ("  what:", first.What),
                ]);
                var open = result.Unacknowledged.Count();
                context.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{result.Problems.Count} finding(s), {result.Problems.Count - open} acknowledged"));
                if (open > 0 || !parseResult.GetValue(acceptAcknowledged))
                {
                    return ExitCodes.Refused;
                }
            }

            if (result.Segments == 0)
            {
                throw CliException.Local("no audit segments found (audit-NODE-NNNNNNNN.log).");
            }

            context.Out.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"OK {result.Records} records in {result.Segments} segment(s) of {result.Nodes.Count} node(s) ({string.Join(", ", result.Nodes)}); {result.Checkpoints} checkpoint(s) verified{(publicKey is null ? "" : " with the pinned key")}{(heads.Count == 0 ? "" : $"; {heads.Count} signed head(s) reached")}"));
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>The node ids of the segments under <paramref name="paths"/>.</summary>
    private static HashSet<string> Nodes(string[] paths)
    {
        var nodes = new HashSet<string>(StringComparer.Ordinal);
        foreach (var path in paths)
        {
            if (Directory.Exists(path))
            {
                nodes.UnionWith(AuditFiles.All(path).Select(s => s.Node));
            }
            else if (AuditChain.TryParseSegmentFileName(Path.GetFileName(path), out var node, out _))
            {
                nodes.Add(node);
            }
        }

        return nodes;
    }

    private static Command CreateHead(CliContext context, HelpTexts help)
    {
        var operatorOptions = new OperatorOptions();
        var node = new Option<string?>("--node") { Description = "Only this node's head." };
        var command = new Command("head", "Print each node's signed audit chain head from a broker (role auditor), one JSON object per line: keep it off the host and pass it to 'verify --expect-head'.");
        command.Options.Add(node);
        operatorOptions.AddTo(command);
        help.Add(command, """
            Examples:
              brokerctl audit head --dev > heads.jsonl
              brokerctl audit head --broker https://broker.example.org:8443 --node broker-a
            """);
        command.SetAction(BrokerCtl.Guarded(context, async (parseResult, cancellationToken) =>
        {
            foreach (var head in await FetchHeadsAsync(context, parseResult, operatorOptions, cancellationToken, parseResult.GetValue(node)))
            {
                context.Out.WriteLine(AuditHeads.ToJson(head));
            }

            return ExitCodes.Success;
        }));
        return command;
    }

    private static async Task<List<AuditHead>> FetchHeadsAsync(CliContext context, ParseResult parseResult, OperatorOptions operatorOptions, CancellationToken cancellationToken, string? node = null)
    {
        var (address, token) = operatorOptions.Resolve(parseResult, context);
        using var api = new AuditApi(address, token);
        var response = await api.CallAsync(async (client, options) => await client.GetHeadsAsync(new GetAuditHeadsRequest { Node = node ?? "" }, options), cancellationToken);
        return response.Heads
            .Select(h => AuditHeads.TryParse(h.Json) ?? throw CliException.Local($"the broker sent a head for node '{h.Node}' that is not a signed audit head."))
            .ToList();
    }

    private static Command CreateTail(CliContext context, HelpTexts help)
    {
        var paths = OptionalPathsArgument();
        var count = new Option<int>("--lines", "-n") { Description = "How many of the newest records to print.", DefaultValueFactory = _ => 20 };
        var follow = new Option<bool>("--follow", "-f") { Description = "From a broker (no PATH): keep the stream open and print records as the node writes them, until interrupted (Ctrl+C). On files, use tail -f." };
        var output = OutputFormat.CreateOption();
        var operatorOptions = new OperatorOptions();
        var command = new Command("tail", "Print the newest records (each node's in seq order, nodes interleaved by time; from a broker: the records in its folder).");
        command.Arguments.Add(paths);
        command.Options.Add(count);
        command.Options.Add(follow);
        command.Options.Add(output);
        AddRemote(command, paths, operatorOptions);
        help.Add(command, """
            Examples:
              brokerctl audit tail .dev/audit -n 5
              brokerctl audit tail --dev -n 5
              brokerctl audit tail --broker https://broker.example.org:5443 --token-file ~/.broker/auditor.jwt -f --output json
            """);
        command.SetAction(BrokerCtl.Guarded(context, async (parseResult, cancellationToken) =>
        {
            List<AuditLine> newest;
            if (parseResult.GetValue(paths) is { Length: > 0 } files)
            {
                if (parseResult.GetValue(follow))
                {
                    throw CliException.Usage("--follow reads from a broker (leave out PATH); on files use tail -f.");
                }

                newest = AuditFilter.Newest(Read(files), parseResult.GetValue(count));
            }
            else if (parseResult.GetValue(follow))
            {
                var (address, token) = operatorOptions.Resolve(parseResult, context);
                using var api = new AuditApi(address, token);
                var format = parseResult.GetValue(output)!;
                var first = Math.Clamp(parseResult.GetValue(count), 1, 10_000);
                return await api.CallAsync(
                    async (client, options) =>
                    {
                        // Each record as it arrives: JSON Lines, or one table row per record.
                        using var call = client.Tail(new TailAuditRequest { Lines = first, Follow = true }, options);
                        try
                        {
                            await foreach (var record in call.ResponseStream.ReadAllAsync(cancellationToken))
                            {
                                Write(context, FromWire([record]), format, header: false);
                                await context.Out.FlushAsync(cancellationToken);
                            }
                        }
                        catch (Exception ex) when (cancellationToken.IsCancellationRequested && ex is OperationCanceledException or RpcException)
                        {
                            // Interrupted by the operator: a normal end.
                        }

                        return ExitCodes.Success;
                    },
                    cancellationToken);
            }
            else
            {
                var (address, token) = operatorOptions.Resolve(parseResult, context);
                using var api = new AuditApi(address, token);
                var lines = Math.Clamp(parseResult.GetValue(count), 1, 10_000);
                newest = await api.CallAsync(
                    async (client, options) =>
                    {
                        using var call = client.Tail(new TailAuditRequest { Lines = lines }, options);
                        var records = new List<AuditRecord>();
                        await foreach (var record in call.ResponseStream.ReadAllAsync(cancellationToken))
                        {
                            records.Add(record);
                        }

                        return FromWire(records);
                    },
                    cancellationToken);
            }

            Write(context, newest, parseResult.GetValue(output)!);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command CreateQuery(CliContext context, HelpTexts help)
    {
        var paths = OptionalPathsArgument();
        var operatorOptions = new OperatorOptions();
        var agent = new Option<string?>("--agent") { Description = "Workload (SPIFFE ID or mapped subject) the record is about." };
        var task = new Option<string?>("--task") { Description = "Task id." };
        var token = new Option<string?>("--token-id") { Description = "Token id (jti)." };
        var actor = new Option<string?>("--actor") { Description = "Who acted: operator, approver or workload." };
        var type = new Option<string?>("--type") { Description = "Event type name (credential.issued) or id (2000); a band prefix like 'approval.' or '5' matches the band." };
        var since = new Option<DateTimeOffset?>("--since") { Description = "Records at or after this time (ISO 8601)." };
        var until = new Option<DateTimeOffset?>("--until") { Description = "Records before this time (ISO 8601)." };
        var limit = new Option<int>("--limit") { Description = "Most records to print (newest kept).", DefaultValueFactory = _ => 1000 };
        var output = OutputFormat.CreateOption();
        var command = new Command("query", "Find records by agent, task, token id, actor, type and time range. Filters combine with AND.");
        command.Arguments.Add(paths);
        foreach (var option in new Option[] { agent, task, token, actor, type, since, until, limit, output })
        {
            command.Options.Add(option);
        }

        AddRemote(command, paths, operatorOptions);

        help.Add(command, """
            Examples:
              # Who got what for task T-1, and who revoked it:
              brokerctl audit query .dev/audit --task T-1
              brokerctl audit query .dev/audit --type credential.revoked --since 2030-01-01T00:00:00Z --output json
              # Ask the broker instead (role auditor):
              brokerctl audit query --dev --task T-1
            """);
        command.SetAction(BrokerCtl.Guarded(context, async (parseResult, cancellationToken) =>
        {
            var filter = new AuditFilter(
                parseResult.GetValue(agent),
                parseResult.GetValue(task),
                parseResult.GetValue(token),
                parseResult.GetValue(actor),
                parseResult.GetValue(type),
                parseResult.GetValue(since),
                parseResult.GetValue(until));
            List<AuditLine> matches;
            if (parseResult.GetValue(paths) is { Length: > 0 } files)
            {
                matches = filter.Apply(Read(files), parseResult.GetValue(limit));
            }
            else
            {
                var request = new QueryAuditRequest
                {
                    Agent = filter.Agent ?? "",
                    TaskId = filter.Task ?? "",
                    TokenId = filter.TokenId ?? "",
                    Actor = filter.Actor ?? "",
                    Type = filter.Type ?? "",
                    Since = filter.Since is { } from ? Timestamp.FromDateTimeOffset(from) : null,
                    Until = filter.Until is { } to ? Timestamp.FromDateTimeOffset(to) : null,
                    Limit = Math.Clamp(parseResult.GetValue(limit), 1, 10_000),
                };
                var (address, token) = operatorOptions.Resolve(parseResult, context);
                using var api = new AuditApi(address, token);
                matches = await api.CallAsync(async (client, options) => FromWire((await client.QueryAsync(request, options)).Records), cancellationToken);
            }

            Write(context, matches, parseResult.GetValue(output)!);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static ECDsa? LoadPublicKey(FileInfo? file)
    {
        if (file is null)
        {
            return null;
        }

        if (!file.Exists)
        {
            throw CliException.Local($"checkpoint key '{file.FullName}' does not exist.");
        }

        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(File.ReadAllText(file.FullName));
            return key;
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException)
        {
            key.Dispose();
            throw CliException.Local($"checkpoint key '{file.FullName}' is not a PEM EC key: {ex.Message}");
        }
    }

    private static List<AuditLine> Read(string[] paths)
    {
        try
        {
            return AuditReader.ReadAll(paths);
        }
        catch (FileNotFoundException ex)
        {
            throw CliException.Local(ex.Message);
        }
    }

    private static void Write(CliContext context, List<AuditLine> records, string output, bool header = true)
    {
        if (output == OutputFormat.Json)
        {
            // The records exactly as written, one per line (JSON Lines).
            foreach (var record in records)
            {
                context.Out.WriteLine(record.Json);
            }

            return;
        }

        OutputFormat.WriteColumns(
            context.Out,
            header ? ["TIME", "NODE", "SEQ", "TYPE", "OUTCOME", "SUBJECT", "TASK", "TOKEN", "ACTOR", "REASON"] : null,
            records.Select(r => (IReadOnlyList<string>)
            [
                r.Event.Time.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture),
                r.Event.Node ?? "-",
                r.Event.Seq?.ToString(CultureInfo.InvariantCulture) ?? "-",
                r.Event.Type,
                r.Event.Outcome,
                r.Event.Subject ?? "-",
                Cell(r.Event.TaskId) + (r.Event.Phase is null ? "" : "/" + r.Event.Phase),
                Cell(r.Event.TokenId),
                Cell(r.Event.Actor),
                Cell(r.Event.Reason ?? r.Event.Selector),
            ]).ToList(),
            context.Colour);
    }

    private static string Cell(string? value) => value ?? "-";

    /// <summary>Records from the API, read back from the exact lines the broker sent.</summary>
    private static List<AuditLine> FromWire(IEnumerable<AuditRecord> records) =>
        records.Select(r => JsonSerializer.Deserialize(r.Json, AuditJsonContext.Default.AuditEvent) is { } e ? new AuditLine(e, r.Json) : null)
            .OfType<AuditLine>()
            .ToList();

    private sealed class AuditApi(string address, string token) : IDisposable
    {
        private readonly GrpcChannel _channel = GrpcChannel.ForAddress(address);

        public Task<T> CallAsync<T>(Func<AuditService.AuditServiceClient, CallOptions, Task<T>> call, CancellationToken cancellationToken)
        {
            var options = new CallOptions(new Metadata { { "authorization", "Bearer " + token } }, DateTime.UtcNow + AdminApi.CallTimeout, cancellationToken);
            return ConnectionOptions.CallAsync(address, async () =>
            {
                try
                {
                    return await call(new AuditService.AuditServiceClient(_channel), options);
                }
                catch (RpcException ex) when (ex.StatusCode == StatusCode.PermissionDenied && BrokerRefusal.From(ex).Reason is null)
                {
                    throw new CliException(ExitCodes.Refused, "PERMISSION_DENIED: the operator token lacks the role to read the audit log (role auditor).");
                }
                catch (RpcException ex) when (ex.StatusCode == StatusCode.Unauthenticated && BrokerRefusal.From(ex).Reason is null)
                {
                    throw new CliException(ExitCodes.Refused, "UNAUTHENTICATED: the broker did not accept the operator token. Get a fresh token from your IdP, or use --dev against a dev broker.");
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
