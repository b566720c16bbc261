using Broker.Core.Audit;

namespace Broker.Client.Tests;

/// <summary>
/// Two broker processes on one audit folder (a second --dev on the same dev folder, as the old
/// three-node recipe did): the second is refused with BRK1160 and exit code 11 before it writes
/// or repairs anything, the first keeps serving, and the folder verifies.
/// </summary>
public sealed class OneWriterPerAuditFolderTests : IDisposable
{
    private readonly string _dev = Directory.CreateTempSubdirectory("broker-one-writer-").FullName;

    private string AuditFolder => Path.Combine(_dev, "audit");

    [Fact]
    public async Task A_second_node_on_the_same_audit_folder_is_refused_and_the_folder_still_verifies()
    {
        var grpcPort = ChildProcess.Port();
        await using var first = ChildProcess.StartServer("--dev", "--dev-dir", _dev, "--grpc-port", grpcPort, "--http-port", ChildProcess.Port());
        await first.WaitServingAsync();
        Assert.Equal(0, (await IssueAsync("before")).ExitCode);

        var (code, stdout, stderr) = await ChildProcess.RunServerToExitAsync("--dev", "--dev-dir", _dev, "--grpc-port", ChildProcess.Port(), "--http-port", ChildProcess.Port());

        Assert.Equal(11, code);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("BRK1160: ", line, StringComparison.Ordinal);
        Assert.Contains($"'{AuditFolder}'", line, StringComparison.Ordinal);
        Assert.Contains("each node needs its own audit folder", line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stdout + stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("DEV MODE", stdout, StringComparison.Ordinal);

        // The refused node left brokerctl pointed at the node that serves, and that node still issues.
        Assert.Contains($"127.0.0.1:{grpcPort}", await File.ReadAllTextAsync(Path.Combine(_dev, "dev.json")), StringComparison.Ordinal);
        Assert.Equal(0, (await IssueAsync("after")).ExitCode);
        Assert.Equal(0, await first.StopAsync());

        var verify = await Cli.RunAsync("audit", "verify", AuditFolder, "--checkpoint-key", Path.Combine(_dev, "trust", "audit-checkpoint.pub.pem"));
        Assert.True(verify.ExitCode == 0, verify.Out + verify.Error);
        var records = AuditReader.ReadAll([AuditFolder]).Select(r => r.Event).ToList();
        Assert.Single(records.Select(e => e.Node).Distinct());
        Assert.Equal(["before", "after"], records.Where(e => e.Type == AuditEventTypes.CredentialIssued.Name).Select(e => e.TaskId));

        // The lock goes with the process: a node started on the folder afterwards serves and continues the chain.
        await using var next = ChildProcess.StartServer("--dev", "--dev-dir", _dev, "--grpc-port", ChildProcess.Port(), "--http-port", ChildProcess.Port());
        await next.WaitServingAsync();
        Assert.Equal(0, await next.StopAsync());
        verify = await Cli.RunAsync("audit", "verify", AuditFolder, "--checkpoint-key", Path.Combine(_dev, "trust", "audit-checkpoint.pub.pem"));
        Assert.True(verify.ExitCode == 0, verify.Out + verify.Error);
    }

    private Task<CliRun> IssueAsync(string task) => Cli.RunAsync(
        "issue", "--dev", "--dev-dir", _dev, "--agent", "spiffe://dev.local/agents/demo", "--task", task,
        "--phase", "planning", "--scope", "repo:read", "--audience", "https://api.dev.local", "--token-only");

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dev, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
