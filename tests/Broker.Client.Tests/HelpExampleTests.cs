using System.Text.RegularExpressions;
using Broker.Cli;

namespace Broker.Client.Tests;

/// <summary>The examples brokerctl's --help prints work on a fresh clone: the files they name are in the repository.</summary>
public sealed partial class HelpExampleTests : IDisposable
{
    private readonly string _clone = Directory.CreateTempSubdirectory("brokerctl-fresh-clone-").FullName;

    [Theory]
    [InlineData("--help")]
    [InlineData("policy", "--help")]
    public async Task The_policy_validate_example_validates_with_only_the_files_git_tracks(params string[] help)
    {
        var printed = await Cli.RunAsync(help);
        var example = PolicyValidateExample().Match(printed.Out);
        Assert.True(example.Success, $"no 'brokerctl policy validate deploy/...' example in brokerctl {string.Join(' ', help)}:\n{printed.Out}");
        var path = example.Groups["path"].Value;

        // A fresh clone has what git tracks under deploy/, and nothing that a run wrote.
        var tracked = await ChildProcess.RunToExitAsync("git", TimeSpan.FromMinutes(1), "-C", Repository.Root, "-c", "core.quotePath=false", "ls-files", "--", "deploy");
        Assert.True(tracked.Code == 0, tracked.Error);
        foreach (var file in tracked.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var target = Path.Combine(_clone, file);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(Path.Combine(Repository.Root, file), target);
        }

        var run = await Cli.RunAsync("policy", "validate", Path.Combine(_clone, path));

        Assert.True(run.ExitCode == ExitCodes.Success, $"brokerctl policy validate {path} on a fresh clone:\n{run.Error}");
        Assert.StartsWith("OK sha256:", run.Out, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_clone, recursive: true);

    [GeneratedRegex(@"brokerctl policy validate (?<path>deploy/\S+)")]
    private static partial Regex PolicyValidateExample();
}
