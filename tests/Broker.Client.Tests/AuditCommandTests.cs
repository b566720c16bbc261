using System.Security.Cryptography;
using Broker.Core.Audit;
using Microsoft.Extensions.Logging.Abstractions;

namespace Broker.Client.Tests;

/// <summary><c>brokerctl audit verify|tail|query</c> on a real log written by the broker's sink.</summary>
public sealed class AuditCommandTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("brokerctl-audit-").FullName;
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private string _publicKeyFile = "";

    public async Task InitializeAsync()
    {
        _publicKeyFile = Path.Combine(_directory, "..", Path.GetFileName(_directory) + "-audit.pub.pem");
        await File.WriteAllTextAsync(_publicKeyFile, _key.ExportSubjectPublicKeyInfoPem());
        var options = new FileAuditOptions { Directory = _directory, NodeId = "node-a", CheckpointKey = _key, SegmentMaxBytes = 2048 };
        await using var sink = new FileAuditSink(options, TimeProvider.System, NullLogger<FileAuditSink>.Instance);
        for (var i = 0; i < 12; i++)
        {
            await sink.AppendAsync(
                new AuditEvent
                {
                    EventId = AuditEventTypes.CredentialIssued.Id,
                    Type = AuditEventTypes.CredentialIssued.Name,
                    Time = DateTimeOffset.Parse("2030-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture).AddMinutes(i),
                    CorrelationId = $"c-{i}",
                    Outcome = AuditOutcomes.Success,
                    Subject = i % 2 == 0 ? "spiffe://example.org/agents/a" : "spiffe://example.org/agents/b",
                    TaskId = $"task-{i % 3}",
                    TokenId = $"tok-{i:D2}",
                    Detail = "line one\nline two",
                },
                CancellationToken.None);
        }

        await sink.AppendAsync(
            new AuditEvent
            {
                EventId = AuditEventTypes.Revoked.Id,
                Type = AuditEventTypes.Revoked.Name,
                Time = DateTimeOffset.Parse("2030-01-01T01:00:00Z", System.Globalization.CultureInfo.InvariantCulture),
                CorrelationId = "c-revoke",
                Outcome = AuditOutcomes.Success,
                Actor = "alice",
                Selector = "task task-1",
                TaskId = "task-1",
            },
            CancellationToken.None);
    }

    public Task DisposeAsync()
    {
        _key.Dispose();
        Directory.Delete(_directory, recursive: true);
        File.Delete(_publicKeyFile);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Verify_says_OK_and_exits_0_on_an_untouched_log()
    {
        var run = await Cli.RunAsync("audit", "verify", _directory, "--checkpoint-key", _publicKeyFile);

        Assert.Equal(0, run.ExitCode);
        Assert.Contains("OK ", run.Out, StringComparison.Ordinal);
        Assert.Contains("with the pinned key", run.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verify_names_the_first_bad_record_and_exits_1_after_a_one_byte_edit()
    {
        var segment = AuditFiles.All(_directory)[1].Path;
        var lines = await File.ReadAllLinesAsync(segment);
        lines[2] = lines[2].Replace("\"c-", "\"C-", StringComparison.Ordinal);
        await File.WriteAllTextAsync(segment, string.Join('\n', lines) + "\n");

        var run = await Cli.RunAsync("audit", "verify", _directory);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains($"TAMPERED: {segment}:3: seq", run.Out, StringComparison.Ordinal);
        Assert.Contains("\n  line:  3\n", run.Out.ReplaceLineEndings("\n"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verify_names_the_record_and_exits_1_when_a_byte_becomes_invalid_UTF8()
    {
        var segment = AuditFiles.All(_directory)[1].Path;
        var bytes = await File.ReadAllBytesAsync(segment);
        var third = bytes.AsSpan().IndexOf((byte)'\n') + 1;
        third += bytes.AsSpan(third).IndexOf((byte)'\n') + 1;
        var detail = third + bytes.AsSpan(third).IndexOf("line one"u8);
        bytes[detail] = 0xFF;
        await File.WriteAllBytesAsync(segment, bytes);

        var verify = await Cli.RunAsync("audit", "verify", _directory);
        var query = await Cli.RunAsync("audit", "query", _directory, "--output", "json");

        Assert.Equal(1, verify.ExitCode);
        Assert.Contains($"TAMPERED: {segment}:3: ", verify.Out, StringComparison.Ordinal);
        Assert.Equal(0, query.ExitCode);
    }

    [Fact]
    public async Task Verify_of_a_missing_path_is_a_local_error()
    {
        var run = await Cli.RunAsync("audit", "verify", Path.Combine(_directory, "nope"));

        Assert.Equal(4, run.ExitCode);
    }

    [Fact]
    public async Task Query_filters_by_task_and_type_and_prints_json_lines_as_written()
    {
        var run = await Cli.RunAsync("audit", "query", _directory, "--task", "task-1", "--output", "json");

        Assert.Equal(0, run.ExitCode);
        var lines = run.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(5, lines.Length); // four issuances and the revocation
        Assert.All(lines, l => Assert.StartsWith("{\"seq\":", l, StringComparison.Ordinal));

        run = await Cli.RunAsync("audit", "query", _directory, "--type", "credential.revoked", "--actor", "alice");
        Assert.Contains("credential.revoked", run.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("credential.issued", run.Out, StringComparison.Ordinal);

        run = await Cli.RunAsync("audit", "query", _directory, "--agent", "spiffe://example.org/agents/b", "--until", "2030-01-01T00:04:00Z");
        Assert.Equal(3, run.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length); // header, tok-01, tok-03
    }

    [Fact]
    public async Task Tail_prints_the_newest_records_one_per_line()
    {
        var run = await Cli.RunAsync("audit", "tail", _directory, "-n", "2");

        Assert.Equal(0, run.ExitCode);
        var lines = run.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Contains("tok-11", lines[1], StringComparison.Ordinal);
        Assert.Contains("credential.revoked", lines[2], StringComparison.Ordinal);
    }
}
