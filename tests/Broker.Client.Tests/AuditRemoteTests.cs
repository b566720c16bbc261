namespace Broker.Client.Tests;

/// <summary><c>brokerctl audit tail|query</c> without PATH: the broker's AuditService, role auditor.</summary>
public sealed class AuditRemoteTests : IAsyncLifetime
{
    private DevBroker _broker = null!;

    public async Task InitializeAsync() => _broker = await DevBroker.StartAsync();

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Fact]
    public async Task Query_and_tail_ask_the_broker()
    {
        var issued = await Cli.RunAsync("issue", "--dev", "--dev-dir", _broker.Directory, "--agent", "spiffe://dev.local/agents/demo", "--task", "remote-audit",
            "--phase", "planning", "--scope", "repo:read", "--audience", "https://api.dev.local", "--token-only");
        Assert.Equal(0, issued.ExitCode);

        var query = await Cli.RunAsync("audit", "query", "--dev", "--dev-dir", _broker.Directory, "--task", "remote-audit", "--output", "json");
        Assert.Equal(0, query.ExitCode);
        var lines = query.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(lines, l => l.Contains("\"type\":\"credential.issued\"", StringComparison.Ordinal) && l.Contains("\"task_id\":\"remote-audit\"", StringComparison.Ordinal));
        Assert.All(lines, l => Assert.Contains("remote-audit", l, StringComparison.Ordinal));

        var tail = await Cli.RunAsync("audit", "tail", "--dev", "--dev-dir", _broker.Directory, "-n", "1");
        Assert.Equal(0, tail.ExitCode);
        Assert.Contains("credential.issued", tail.Out, StringComparison.Ordinal);
        Assert.Contains("remote-audit", tail.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_path_and_a_broker_together_are_a_usage_error()
    {
        var run = await Cli.RunAsync("audit", "query", _broker.Directory, "--dev", "--dev-dir", _broker.Directory);

        Assert.Equal(2, run.ExitCode);
    }
}
