namespace Broker.Client.Tests;

/// <summary>
/// The built brokerctl against a real dev broker: tables are plain text when piped or under
/// NO_COLOR, and bold headers appear only on a terminal.
/// </summary>
public sealed class TerminalOutputTests : IAsyncLifetime
{
    private const char Escape = '\u001b';
    private const string StyleSequence = "\u001b\\[[0-9;]*m";
    private DevBroker _broker = null!;

    public async Task InitializeAsync()
    {
        _broker = await DevBroker.StartAsync();
        var revoke = await Cli.RunAsync("revoke", "task", "colour-1", "--reason", "INC-1: check the table", "--dev", "--dev-dir", _broker.Directory);
        Assert.True(revoke.ExitCode == 0, revoke.Error);
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Fact]
    public async Task Redirected_output_has_no_escape_codes()
    {
        var (code, stdout, stderr) = await Brokerctl.RunAsync("revocations", "list", "--dev", "--dev-dir", _broker.Directory);

        Assert.True(code == 0, stderr);
        Assert.StartsWith("ID ", stdout, StringComparison.Ordinal);
        Assert.Contains("task colour-1", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(Escape, stdout + stderr);
    }

    [Fact]
    public async Task On_a_terminal_headers_are_bold_and_NO_COLOR_turns_that_off()
    {
        var styled = await Brokerctl.RunOnTerminalAsync(new Dictionary<string, string?> { ["NO_COLOR"] = null, ["TERM"] = "xterm" }, "revocations", "list", "--dev", "--dev-dir", _broker.Directory);
        var plain = await Brokerctl.RunOnTerminalAsync(new Dictionary<string, string?> { ["NO_COLOR"] = "1", ["TERM"] = "xterm" }, "revocations", "list", "--dev", "--dev-dir", _broker.Directory);

        Assert.True(styled.Code == 0, styled.Out);
        Assert.Contains($"{Escape}[1mID", styled.Out, StringComparison.Ordinal);
        Assert.Contains("task colour-1", styled.Out, StringComparison.Ordinal);
        Assert.True(plain.Code == 0, plain.Out);
        Assert.Contains("task colour-1", plain.Out, StringComparison.Ordinal);
        // Only styling is checked here: on a terminal the .NET runtime itself switches the keypad
        // mode (ESC [?1h), which is no colour and which brokerctl does not write.
        Assert.DoesNotMatch(StyleSequence, plain.Out);
    }
}
