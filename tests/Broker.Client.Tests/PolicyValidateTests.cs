using System.Text;
using Broker.Cli;
using Broker.Core.Policy;

namespace Broker.Client.Tests;

public sealed class PolicyValidateTests : IDisposable
{
    private const string ValidPolicy = """
        version: 1
        trust:
          spiffe:
            - trust_domain: dev.local
              jwt_bundle_file: trust/dev.local.jwks
        agents:
          - name: dev-agents
            match: spiffe://dev.local/agents/*
            phases:
              planning:
                scopes: [repo:read, tickets:read]
                audiences: [https://api.dev.local]
                max_ttl: 10m

        """;

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "brokerctl-policy-" + Guid.NewGuid().ToString("N"));

    public PolicyValidateTests()
    {
        Directory.CreateDirectory(Path.Combine(_directory, "trust"));
        File.WriteAllText(Path.Combine(_directory, "trust", "dev.local.jwks"), """{"keys":[]}""");
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task A_valid_policy_prints_OK_and_its_digest()
    {
        var path = Write("policy.yaml", ValidPolicy);

        var run = await Cli.RunAsync("policy", "validate", path);

        Assert.True(run.ExitCode == ExitCodes.Success, run.Error);
        Assert.Equal($"OK {PolicyLoader.ComputeDigest(File.ReadAllBytes(path))}", run.Out.Trim());
        Assert.Equal("", run.Error);
    }

    [Fact]
    public async Task An_invalid_policy_prints_each_error_with_file_line_and_column_and_exits_1()
    {
        var path = Write("bad.yaml", ValidPolicy.Replace("max_ttl: 10m", "max_ttl: 10m\n        surprise: true", StringComparison.Ordinal));

        var run = await Cli.RunAsync("policy", "validate", path);

        Assert.Equal(ExitCodes.Refused, run.ExitCode);
        Assert.Equal("", run.Out);
        Assert.Matches($@"^{System.Text.RegularExpressions.Regex.Escape(path)}:\d+:\d+: .*surprise", run.Error.Split('\n')[0]);
        Assert.Contains("invalid policy (1 error)", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_file_is_a_local_error()
    {
        var run = await Cli.RunAsync("policy", "validate", Path.Combine(_directory, "nope.yaml"));

        Assert.Equal(ExitCodes.LocalError, run.ExitCode);
        Assert.Contains("does not exist", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_without_a_file_is_a_usage_error()
    {
        var run = await Cli.RunAsync("policy", "validate");

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
    }

    private string Write(string name, string content)
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllText(path, content, new UTF8Encoding(false));
        return path;
    }
}
