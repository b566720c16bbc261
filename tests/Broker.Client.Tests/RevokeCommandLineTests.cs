using System.Net;
using System.Net.Sockets;
using Broker.Cli;
using Microsoft.Extensions.Time.Testing;

namespace Broker.Client.Tests;

/// <summary>What revoke, revocations and introspect refuse before anything reaches a broker.</summary>
public sealed class RevokeCommandLineTests
{
    private static readonly Dictionary<string, string> WithOperatorToken = new() { ["BROKER_OPERATOR_TOKEN"] = "a.b.c" };

    [Theory]
    [InlineData("token", "jti-1")]
    [InlineData("task", "incident-7")]
    [InlineData("agent", "spiffe://example.org/agents/a")]
    [InlineData("domain", "example.org")]
    [InlineData("before", "now")]
    public async Task Revoke_without_reason_is_a_usage_error_naming_it(string kind, string target)
    {
        var run = await Cli.RunAsync(["revoke", kind, target, "--dev"]);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains("--reason", run.Error, StringComparison.Ordinal);
        Assert.Contains($"brokerctl revoke {kind} --help", run.Error, StringComparison.Ordinal);
        Assert.Equal("", run.Out);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public async Task Revoke_with_a_blank_reason_is_a_usage_error(string reason)
    {
        var run = await Cli.RunAsync(["revoke", "task", "incident-7", "--reason", reason], environment: WithOperatorToken);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains("--reason is empty", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Revoke_with_an_oversized_reason_is_a_usage_error()
    {
        var run = await Cli.RunAsync(["revoke", "task", "incident-7", "--reason", new string('x', 513)], environment: WithOperatorToken);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains("512", run.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("deploy")]
    [InlineData("Execution")]
    [InlineData("")]
    public async Task Revoke_phase_with_an_unknown_phase_is_a_usage_error_listing_the_phases(string phase)
    {
        var run = await Cli.RunAsync(["revoke", "phase", "incident-7", "--phase", phase, "--reason", "r"], environment: WithOperatorToken);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains("execution", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Revoke_phase_without_phase_is_a_usage_error()
    {
        var run = await Cli.RunAsync(["revoke", "phase", "incident-7", "--reason", "r"], environment: WithOperatorToken);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains("--phase", run.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("10:42")]
    [InlineData("2030-01-01T10:42:00")]
    [InlineData("2030-01-01")]
    [InlineData("2030-13-01T10:42:00Z")]
    [InlineData("2030-01-01T25:00:00Z")]
    [InlineData("yesterday")]
    [InlineData("1893456000")]
    [InlineData("2030-01-01T10:42:00+0100")]
    public async Task Revoke_before_with_a_time_that_is_not_rfc3339_with_a_zone_is_a_usage_error(string time)
    {
        var run = await Cli.RunAsync(["revoke", "before", time, "--reason", "r"], environment: WithOperatorToken);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains("RFC 3339", run.Error, StringComparison.Ordinal);
        Assert.Equal("", run.Out);
    }

    [Theory]
    [InlineData("2030-01-01T10:42:00Z", "2030-01-01T10:42:00.0000000+00:00")]
    [InlineData("2030-01-01t10:42:00z", "2030-01-01T10:42:00.0000000+00:00")]
    [InlineData("2030-01-01 11:42:00+01:00", "2030-01-01T10:42:00.0000000+00:00")]
    [InlineData("2030-01-01T05:12:00.5-05:30", "2030-01-01T10:42:00.5000000+00:00")]
    [InlineData("2030-01-01T10:42:00.123456789Z", "2030-01-01T10:42:00.1234567+00:00")]
    public void Revoke_before_reads_rfc3339_times_as_utc(string text, string expected)
    {
        var parse = BrokerCtl.BuildRootCommand(Context()).Parse(["revoke", "before", text, "--reason", "r"]);

        Assert.Empty(parse.Errors);
        Assert.Equal(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), parse.GetValue<DateTimeOffset>("TIME"));
    }

    [Fact]
    public void Revoke_before_now_is_the_clocks_now_and_a_future_time_is_left_for_the_broker_to_refuse()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2030-01-01T10:42:00Z", System.Globalization.CultureInfo.InvariantCulture));

        var now = BrokerCtl.BuildRootCommand(Context(time)).Parse(["revoke", "before", "now", "--reason", "r"]);
        var future = BrokerCtl.BuildRootCommand(Context(time)).Parse(["revoke", "before", "2099-01-01T00:00:00Z", "--reason", "r"]);

        Assert.Empty(now.Errors);
        Assert.Equal(time.GetUtcNow(), now.GetValue<DateTimeOffset>("TIME"));
        Assert.Empty(future.Errors);
    }

    [Fact]
    public async Task Revoke_domain_refuses_a_spiffe_id_and_points_at_revoke_agent()
    {
        var run = await Cli.RunAsync(["revoke", "domain", "spiffe://example.org", "--reason", "r"], environment: WithOperatorToken);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains("revoke agent", run.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("revoke", "task")]
    [InlineData("revoke", "token")]
    public async Task Revoke_without_a_target_is_a_usage_error(params string[] args)
    {
        var run = await Cli.RunAsync([.. args, "--reason", "r"], environment: WithOperatorToken);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
    }

    [Fact]
    public async Task Admin_commands_without_operator_credentials_say_how_to_give_them()
    {
        var run = await Cli.RunAsync("revoke", "task", "incident-7", "--reason", "r");

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains("--operator-token", run.Error, StringComparison.Ordinal);
        Assert.Contains("BROKER_OPERATOR_TOKEN", run.Error, StringComparison.Ordinal);
        Assert.Contains("--dev", run.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "--as", "alice" }, "--as is only used with --dev")]
    [InlineData(new[] { "--dev", "--operator-token", "a.b.c" }, "one way only")]
    [InlineData(new[] { "--operator-token", "a.b.c", "--broker", "127.0.0.1:5080" }, "--broker must be")]
    public async Task Inconsistent_operator_options_are_usage_errors(string[] extra, string expected)
    {
        var run = await Cli.RunAsync(["revoke", "task", "incident-7", "--reason", "r", .. extra]);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains(expected, run.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("eyJh bGci.e30.sig")]
    [InlineData("eyJhbGci.e30.sig\nX-Injected: 1")]
    public async Task An_operator_token_that_cannot_be_a_bearer_token_is_refused_without_echoing_it(string token)
    {
        var run = await Cli.RunAsync(["revoke", "task", "incident-7", "--reason", "r", "--operator-token", token]);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains("--operator-token", run.Error, StringComparison.Ordinal);
        if (token.Length > 0)
        {
            Assert.DoesNotContain(token, run.Error, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1001")]
    [InlineData("ten")]
    public async Task Revocations_list_with_a_limit_out_of_range_is_a_usage_error(string limit)
    {
        var run = await Cli.RunAsync(["revocations", "list", "--limit", limit], environment: WithOperatorToken);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
    }

    [Fact]
    public async Task Restore_epoch_without_reason_is_a_usage_error()
    {
        var run = await Cli.RunAsync(["revocations", "restore-epoch"], environment: WithOperatorToken);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains("--reason", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Introspect_without_a_token_is_a_usage_error()
    {
        var empty = await Cli.RunAsync(["introspect", "-"], stdin: "  \n");
        var missing = await Cli.RunAsync("introspect");

        Assert.Equal(ExitCodes.Usage, empty.ExitCode);
        Assert.Contains("no token", empty.Error, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.Usage, missing.ExitCode);
    }

    [Theory]
    [InlineData("revoke", "token", "jti-1", "--reason", "r")]
    [InlineData("revocations", "list")]
    [InlineData("revocations", "restore-epoch", "--reason", "r")]
    public async Task Admin_commands_against_a_closed_port_report_the_broker_unreachable_and_never_print_the_token(params string[] args)
    {
        const string token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
        var address = $"http://127.0.0.1:{ClosedPort()}";

        var run = await Cli.RunAsync([.. args, "--broker", address], environment: new Dictionary<string, string> { ["BROKER_OPERATOR_TOKEN"] = token });

        Assert.Equal(ExitCodes.Unavailable, run.ExitCode);
        Assert.Contains(address, run.Error, StringComparison.Ordinal);
        Assert.DoesNotContain(token, run.Error, StringComparison.Ordinal);
        Assert.Equal("", run.Out);
    }

    [Fact]
    public async Task Introspect_against_a_closed_port_reports_the_broker_unreachable()
    {
        var address = $"http://127.0.0.1:{ClosedPort()}";

        var run = await Cli.RunAsync(["introspect", "a.b.c", "--broker", address], environment: new Dictionary<string, string> { ["BROKER_RESOURCE_SERVER_TOKEN"] = "e30.e30.c2ln" });

        Assert.Equal(ExitCodes.Unavailable, run.ExitCode);
        Assert.Contains(address, run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Revoke_with_dev_uses_the_address_from_dev_json()
    {
        var address = $"http://127.0.0.1:{ClosedPort()}";
        using var dev = new DevEnvironmentFixture(address);

        var run = await Cli.RunAsync("revoke", "task", "incident-7", "--reason", "r", "--dev", "--dev-dir", dev.Directory);

        Assert.Equal(ExitCodes.Unavailable, run.ExitCode);
        Assert.Contains(address, run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Revoke_with_dev_and_a_dev_json_without_an_operator_identity_is_a_local_error()
    {
        using var dev = new DevEnvironmentFixture(withOperator: false);

        var run = await Cli.RunAsync("revoke", "task", "incident-7", "--reason", "r", "--dev", "--dev-dir", dev.Directory);

        Assert.Equal(ExitCodes.LocalError, run.ExitCode);
        Assert.Contains("operator_key_file", run.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("revoke", "--help")]
    [InlineData("revoke", "token", "--help")]
    [InlineData("revoke", "task", "--help")]
    [InlineData("revoke", "phase", "--help")]
    [InlineData("revoke", "agent", "--help")]
    [InlineData("revoke", "domain", "--help")]
    [InlineData("revoke", "before", "--help")]
    [InlineData("revocations", "--help")]
    [InlineData("revocations", "list", "--help")]
    [InlineData("revocations", "restore-epoch", "--help")]
    [InlineData("introspect", "--help")]
    public async Task Every_new_command_has_help_with_examples_and_exit_codes(params string[] args)
    {
        var run = await Cli.RunAsync(args);

        Assert.Equal(ExitCodes.Success, run.ExitCode);
        Assert.Contains("Usage:", run.Out, StringComparison.Ordinal);
        Assert.Contains("Examples:", run.Out, StringComparison.Ordinal);
        Assert.Contains("Exit codes:", run.Out, StringComparison.Ordinal);
        Assert.Equal("", run.Error);
    }

    [Fact]
    public async Task Restore_epoch_help_says_it_revokes_everything_issued_before_now_and_why()
    {
        var run = await Cli.RunAsync("revocations", "restore-epoch", "--help");
        var text = System.Text.RegularExpressions.Regex.Replace(run.Out, @"\s+", " ");

        Assert.Contains("Redis lost its data", text, StringComparison.Ordinal);
        Assert.Contains("refuses ALL issuance", text, StringComparison.Ordinal);
        Assert.Contains("writes a new epoch AND revokes every token issued before now", text, StringComparison.Ordinal);
        Assert.Contains("what was revoked before the loss is unknown", text, StringComparison.Ordinal);
    }

    private static CliContext Context(TimeProvider? time = null) =>
        new(new StringWriter(), new StringWriter(), new StringReader(""), time ?? TimeProvider.System, _ => null);

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
