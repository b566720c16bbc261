namespace Broker.Client.Tests;

/// <summary>brokerctl freeze/unfreeze against a real dev-mode broker.</summary>
public sealed class FreezeEndToEndTests : IAsyncLifetime
{
    private DevBroker _broker = null!;

    public async Task InitializeAsync() => _broker = await DevBroker.StartAsync();

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Fact]
    public async Task Freeze_stops_issuance_until_unfreeze()
    {
        string[] issue = ["issue", "--dev", "--dev-dir", _broker.Directory, "--agent", "spiffe://dev.local/agents/demo", "--task", "freeze-demo",
            "--phase", "planning", "--scope", "repo:read", "--audience", "https://api.dev.local", "--token-only"];

        var freeze = await Cli.RunAsync("freeze", "--reason", "INC-9: drill", "--dev", "--as", "alice", "--dev-dir", _broker.Directory);
        var refused = await Cli.RunAsync(issue);
        var unfreeze = await Cli.RunAsync("unfreeze", "--reason", "drill over", "--dev", "--dev-dir", _broker.Directory);
        var issued = await Cli.RunAsync(issue);

        Assert.Equal(0, freeze.ExitCode);
        Assert.Contains("FROZEN", freeze.Out, StringComparison.Ordinal);
        Assert.Contains("operator:alice", freeze.Out, StringComparison.Ordinal);
        Assert.Equal(3, refused.ExitCode);
        Assert.Contains("ISSUANCE_FROZEN", refused.Error, StringComparison.Ordinal);
        Assert.Equal(0, unfreeze.ExitCode);
        Assert.Equal(0, issued.ExitCode);
        Assert.StartsWith("eyJ", issued.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Freeze_without_a_reason_is_a_usage_error()
    {
        var run = await Cli.RunAsync("freeze", "--dev", "--dev-dir", _broker.Directory);

        Assert.Equal(2, run.ExitCode);
    }
}
