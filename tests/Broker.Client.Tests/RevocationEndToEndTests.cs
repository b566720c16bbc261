using System.Text.Json;
using Broker.Cli;
using Broker.Cli.Dev;
using Broker.Cli.Operators;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Broker.Client.Tests;

/// <summary>
/// brokerctl against a real dev-mode broker in-process: what a responder does during an
/// incident, end to end, through <see cref="BrokerCtl.RunAsync(string[], TextWriter, TextWriter, CancellationToken)"/>'s in-process path.
/// </summary>
public sealed class RevocationEndToEndTests : IAsyncLifetime
{
    private const string Agent = "spiffe://dev.local/agents/demo";

    private DevBroker _broker = null!;

    public async Task InitializeAsync() => _broker = await DevBroker.StartAsync();

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Fact]
    public async Task Issue_then_revoke_task_then_introspect_says_revoked_and_the_list_shows_who_and_why()
    {
        var token = await IssueAsync("incident-7");

        var active = await Cli.RunAsync(["introspect", "--dev", "--dev-dir", _broker.Directory, "-"], stdin: token + "\n");
        Assert.Equal(ExitCodes.Success, active.ExitCode);
        Assert.Contains("active      yes", active.Out, StringComparison.Ordinal);
        Assert.Contains("incident-7", active.Out, StringComparison.Ordinal);

        var revoke = await Cli.RunAsync("revoke", "task", "incident-7", "--reason", "INC-7: agent chained tools outside its plan", "--dev", "--as", "alice", "--dev-dir", _broker.Directory);
        Assert.True(revoke.ExitCode == ExitCodes.Success, revoke.Error);
        Assert.Matches(@"^revoked task incident-7 \(id [^)]+\) — in force on every node within the revocation bound\n", revoke.Out.ReplaceLineEndings("\n"));
        Assert.Contains("operator:alice", revoke.Out, StringComparison.Ordinal);
        Assert.Equal("", revoke.Error);

        var inactive = await Cli.RunAsync(["introspect", token, "--dev", "--dev-dir", _broker.Directory]);
        Assert.Equal(ExitCodes.Refused, inactive.ExitCode);
        Assert.Contains("no — revoked", inactive.Out, StringComparison.Ordinal);
        Assert.Contains(Agent, inactive.Out, StringComparison.Ordinal);
        Assert.DoesNotContain(token, inactive.Out + inactive.Error, StringComparison.Ordinal);

        var list = await Cli.RunAsync("revocations", "list", "--output", "json", "--dev", "--dev-dir", _broker.Directory);
        Assert.Equal(ExitCodes.Success, list.ExitCode);
        var entry = Assert.Single(
            JsonDocument.Parse(list.Out).RootElement.GetProperty("revocations").EnumerateArray(),
            r => r.GetProperty("selector").GetProperty("type").GetString() == "task");
        Assert.Equal("incident-7", entry.GetProperty("selector").GetProperty("task_id").GetString());
        Assert.Equal("operator:alice", entry.GetProperty("actor").GetString());
        Assert.Equal("INC-7: agent chained tools outside its plan", entry.GetProperty("reason").GetString());

        var table = await Cli.RunAsync("revocations", "list", "--dev", "--dev-dir", _broker.Directory);
        Assert.Equal(ExitCodes.Success, table.ExitCode);
        Assert.StartsWith("ID ", table.Out, StringComparison.Ordinal);
        Assert.Contains("task incident-7", table.Out, StringComparison.Ordinal);

        var audit = (await _broker.AuditLinesAsync()).Where(line => line.Contains("credential.revoked", StringComparison.Ordinal)).ToList();
        Assert.Contains(audit, line => line.Contains("operator:alice", StringComparison.Ordinal) && line.Contains("INC-7: agent chained tools outside its plan", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Revoke_token_by_its_jti_leaves_the_tasks_other_tokens_active()
    {
        var first = await IssueAsync("leak-1");
        var second = await IssueAsync("leak-1");

        var revoke = await Cli.RunAsync("revoke", "token", new JsonWebToken(first).Id, "--reason", "pasted in a ticket", "--output", "json", "--dev", "--dev-dir", _broker.Directory);

        Assert.Equal(ExitCodes.Success, revoke.ExitCode);
        var recorded = JsonDocument.Parse(revoke.Out).RootElement.GetProperty("revocations")[0];
        Assert.Equal(new JsonWebToken(first).Id, recorded.GetProperty("selector").GetProperty("token_id").GetString());
        Assert.Equal("operator:dev-operator", recorded.GetProperty("actor").GetString());
        Assert.Equal(ExitCodes.Refused, (await Cli.RunAsync("introspect", first, "--dev", "--dev-dir", _broker.Directory)).ExitCode);
        Assert.Equal(ExitCodes.Success, (await Cli.RunAsync("introspect", second, "--dev", "--dev-dir", _broker.Directory)).ExitCode);
    }

    [Fact]
    public async Task Revoke_phase_agent_domain_and_before_are_recorded_as_asked()
    {
        var token = await IssueAsync("multi-1");

        string[][] commands =
        [
            ["revoke", "phase", "multi-1", "--phase", "execution", "--reason", "r1"],
            ["revoke", "agent", Agent, "--reason", "r2"],
            ["revoke", "domain", "dev.local", "--reason", "r3"],
            ["revoke", "before", "now", "--agent", Agent, "--reason", "r4"],
        ];
        foreach (var command in commands)
        {
            var run = await Cli.RunAsync([.. command, "--dev", "--dev-dir", _broker.Directory]);
            Assert.True(run.ExitCode == ExitCodes.Success, string.Join(' ', command) + ": " + run.Error);
        }

        var list = await Cli.RunAsync("revocations", "list", "--output", "json", "--dev", "--dev-dir", _broker.Directory);
        var types = JsonDocument.Parse(list.Out).RootElement.GetProperty("revocations").EnumerateArray()
            .Select(r => r.GetProperty("selector").GetProperty("type").GetString()).ToList();
        Assert.Equal(["before", "domain", "agent", "phase"], types.Take(4));
        var inactive = await Cli.RunAsync("introspect", token, "--dev", "--dev-dir", _broker.Directory);
        Assert.Equal(ExitCodes.Refused, inactive.ExitCode);
    }

    [Fact]
    public async Task Revoke_before_a_time_in_the_future_is_refused_by_the_broker()
    {
        var run = await Cli.RunAsync("revoke", "before", "2099-01-01T00:00:00Z", "--reason", "r", "--dev", "--dev-dir", _broker.Directory);

        Assert.Equal(ExitCodes.Refused, run.ExitCode);
        Assert.Contains("future", run.Error, StringComparison.Ordinal);
        Assert.Contains("INVALID_ARGUMENT", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_operator_token_from_the_environment_works_and_roles_are_enforced()
    {
        string Token(params string[] roles)
        {
            using var minter = OperatorTokenMinter.FromManifest(DevManifest.Load(_broker.Directory), TimeProvider.System);
            return minter.Mint("carol", roles);
        }

        var auditor = new Dictionary<string, string> { ["BROKER_OPERATOR_TOKEN"] = Token("auditor"), ["BROKER_ADDRESS"] = _broker.GrpcAddress };
        var approver = new Dictionary<string, string> { ["BROKER_OPERATOR_TOKEN"] = Token("approver"), ["BROKER_ADDRESS"] = _broker.GrpcAddress };

        var list = await Cli.RunAsync(["revocations", "list"], environment: auditor);
        var revoke = await Cli.RunAsync(["revoke", "task", "t-1", "--reason", "r"], environment: auditor);
        var listAsApprover = await Cli.RunAsync(["revocations", "list"], environment: approver);

        Assert.Equal(ExitCodes.Success, list.ExitCode);
        Assert.Equal(ExitCodes.Refused, revoke.ExitCode);
        Assert.Contains("PERMISSION_DENIED", revoke.Error, StringComparison.Ordinal);
        Assert.Contains("responder", revoke.Error, StringComparison.Ordinal);
        Assert.DoesNotContain(auditor["BROKER_OPERATOR_TOKEN"], revoke.Error, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.Refused, listAsApprover.ExitCode);
    }

    [Fact]
    public async Task An_agent_credential_or_a_forged_operator_token_is_refused_as_unauthenticated_without_echoing_it()
    {
        var agentToken = await IssueAsync("not-an-operator");

        var withAgentToken = await Cli.RunAsync("revoke", "task", "t-1", "--reason", "r", "--operator-token", agentToken, "--broker", _broker.GrpcAddress);
        var withGarbage = await Cli.RunAsync("revocations", "list", "--operator-token", "a.b.c", "--broker", _broker.GrpcAddress);

        Assert.Equal(ExitCodes.Refused, withAgentToken.ExitCode);
        Assert.Contains("UNAUTHENTICATED", withAgentToken.Error, StringComparison.Ordinal);
        Assert.DoesNotContain(agentToken, withAgentToken.Error, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.Refused, withGarbage.ExitCode);
        Assert.Contains("UNAUTHENTICATED", withGarbage.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Introspect_of_garbage_is_inactive_malformed()
    {
        var run = await Cli.RunAsync("introspect", "not-a-token", "--output", "json", "--dev", "--dev-dir", _broker.Directory);

        Assert.Equal(ExitCodes.Refused, run.ExitCode);
        var root = JsonDocument.Parse(run.Out).RootElement;
        Assert.False(root.GetProperty("active").GetBoolean());
        Assert.Equal("malformed", root.GetProperty("inactive_reason").GetString());
    }

    private async Task<string> IssueAsync(string task)
    {
        var issue = await Cli.RunAsync(
            "issue", "--dev", "--agent", Agent, "--dev-dir", _broker.Directory,
            "--task", task, "--phase", "planning", "--scope", "repo:read", "--audience", "https://api.dev.local", "--token-only");
        Assert.True(issue.ExitCode == ExitCodes.Success, issue.Error);
        return issue.Out.Trim();
    }
}
