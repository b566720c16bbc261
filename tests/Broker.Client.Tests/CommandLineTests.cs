using System.Net;
using System.Net.Sockets;
using Broker.Cli;

namespace Broker.Client.Tests;

public sealed class CommandLineTests
{
    private static readonly string[] ValidIssue =
        ["issue", "--task", "T-1", "--phase", "planning", "--scope", "repo:read", "--audience", "https://api.dev.local"];

    [Fact]
    public async Task Issue_without_task_is_a_usage_error_naming_the_option()
    {
        var run = await Cli.RunAsync("issue", "--svid", "x", "--phase", "planning", "--scope", "repo:read", "--audience", "a");

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains("--task", run.Error, StringComparison.Ordinal);
        Assert.Contains("brokerctl issue --help", run.Error, StringComparison.Ordinal);
        Assert.Equal("", run.Out);
    }

    [Theory]
    [InlineData("deploy")]
    [InlineData("PLANNING")]
    [InlineData("")]
    public async Task Issue_with_an_unknown_phase_is_a_usage_error(string phase)
    {
        var run = await Cli.RunAsync("issue", "--svid", "x", "--task", "T", "--phase", phase, "--scope", "s", "--audience", "a");

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains("planning", run.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new string[0], "Say how to attest")]
    [InlineData(new[] { "--svid", "x", "--svid-file", "f" }, "one way only")]
    [InlineData(new[] { "--svid", "x", "--agent", "spiffe://dev.local/agents/a" }, "--agent is only used with --dev")]
    [InlineData(new[] { "--dev" }, "--dev needs --agent")]
    [InlineData(new[] { "--svid", "x", "--ttl", "5 minutes" }, "not a duration")]
    [InlineData(new[] { "--svid", "x", "--broker", "127.0.0.1:5080" }, "--broker must be")]
    [InlineData(new[] { "--svid", "x", "--token-only", "--output", "json" }, "cannot be combined")]
    [InlineData(new[] { "--svid", "x", "--output", "yaml" }, "yaml")]
    public async Task Issue_refuses_inconsistent_options_as_usage_errors(string[] extra, string expected)
    {
        var run = await Cli.RunAsync([.. ValidIssue, .. extra]);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains(expected, run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_inline_svid_is_never_echoed_in_errors()
    {
        const string secret = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzZWNyZXQifQ.c2lnbmF0dXJl";

        var run = await Cli.RunAsync([.. ValidIssue, "--svid", secret, "--svid-file", "f"]);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.DoesNotContain(secret, run.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("bogus")]
    [InlineData("issue", "--no-such-option")]
    public async Task Unknown_commands_and_options_are_usage_errors(params string[] args)
    {
        var run = await Cli.RunAsync(args);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
    }

    [Fact]
    public async Task End_task_without_task_is_a_usage_error()
    {
        var run = await Cli.RunAsync("end-task", "--svid", "x");

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains("--task", run.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("issue", "--help")]
    [InlineData("end-task", "--help")]
    [InlineData("dev", "svid", "--help")]
    [InlineData("token", "decode", "--help")]
    [InlineData("policy", "validate", "-h")]
    public async Task Every_command_has_help_with_examples_and_exit_codes(params string[] args)
    {
        var run = await Cli.RunAsync(args);

        Assert.Equal(ExitCodes.Success, run.ExitCode);
        Assert.Contains("Usage:", run.Out, StringComparison.Ordinal);
        Assert.Contains("Examples:", run.Out, StringComparison.Ordinal);
        Assert.Contains("Exit codes:", run.Out, StringComparison.Ordinal);
        Assert.Equal("", run.Error);
    }

    [Fact]
    public async Task Help_works_even_when_required_options_are_missing()
    {
        var run = await Cli.RunAsync("issue", "--phase", "nonsense", "--help");

        Assert.Equal(ExitCodes.Success, run.ExitCode);
        Assert.Contains("--task", run.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Issue_against_a_closed_port_reports_the_broker_unreachable_with_exit_code_3()
    {
        var address = $"http://127.0.0.1:{ClosedPort()}";

        var run = await Cli.RunAsync([.. ValidIssue, "--svid", "x.y.z", "--broker", address]);

        Assert.Equal(ExitCodes.Unavailable, run.ExitCode);
        Assert.Contains(address, run.Error, StringComparison.Ordinal);
        Assert.Equal("", run.Out);
    }

    [Fact]
    public async Task The_broker_address_comes_from_the_environment_when_not_given()
    {
        var address = $"http://127.0.0.1:{ClosedPort()}";

        var run = await Cli.RunAsync([.. ValidIssue, "--svid", "x.y.z"], environment: new Dictionary<string, string> { ["BROKER_ADDRESS"] = address });

        Assert.Equal(ExitCodes.Unavailable, run.ExitCode);
        Assert.Contains(address, run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Issue_with_dev_uses_the_address_from_dev_json()
    {
        var address = $"http://127.0.0.1:{ClosedPort()}";
        using var dev = new DevEnvironmentFixture(address);

        var run = await Cli.RunAsync([.. ValidIssue, "--dev", "--agent", "spiffe://dev.local/agents/demo", "--dev-dir", dev.Directory]);

        Assert.Equal(ExitCodes.Unavailable, run.ExitCode);
        Assert.Contains(address, run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Issue_with_a_missing_svid_file_is_a_local_error()
    {
        var run = await Cli.RunAsync([.. ValidIssue, "--svid-file", Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N"))]);

        Assert.Equal(ExitCodes.LocalError, run.ExitCode);
        Assert.Contains("does not exist", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Issue_with_dev_but_no_dev_environment_is_a_local_error()
    {
        var run = await Cli.RunAsync([.. ValidIssue, "--dev", "--agent", "spiffe://dev.local/agents/demo", "--dev-dir", Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N"))]);

        Assert.Equal(ExitCodes.LocalError, run.ExitCode);
        Assert.Contains("dev.json", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Refusals_print_reason_message_and_metadata_and_map_to_exit_codes()
    {
        var stderr = new StringWriter();
        var refused = BrokerCtl.ReportRefusal(stderr, new BrokerRefusal(Grpc.Core.StatusCode.PermissionDenied, "SCOPE_NOT_ALLOWED", "Scopes not allowed in phase planning: deploy:prod",
            new Dictionary<string, string> { ["scopes"] = "deploy:prod", ["phase"] = "planning" }));

        Assert.Equal(ExitCodes.Refused, refused);
        Assert.Equal(
            "SCOPE_NOT_ALLOWED: Scopes not allowed in phase planning: deploy:prod\n  status: PERMISSION_DENIED\n  phase: planning\n  scopes: deploy:prod\n",
            stderr.ToString().ReplaceLineEndings("\n"));

        var unavailable = BrokerCtl.ReportRefusal(new StringWriter(), new BrokerRefusal(Grpc.Core.StatusCode.Unavailable, "AUDIT_UNAVAILABLE", "m", new Dictionary<string, string>()));
        Assert.Equal(ExitCodes.Unavailable, unavailable);
    }

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
