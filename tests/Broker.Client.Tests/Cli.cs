using Broker.Cli;

namespace Broker.Client.Tests;

/// <summary>Runs brokerctl in-process and captures what it printed.</summary>
internal static class Cli
{
    public static async Task<CliRun> RunAsync(string[] args, string stdin = "", TimeProvider? time = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var context = new CliContext(stdout, stderr, new StringReader(stdin), time ?? TimeProvider.System, name => environment?.GetValueOrDefault(name));
        var exitCode = await BrokerCtl.RunAsync(args, context);
        return new CliRun(exitCode, stdout.ToString(), stderr.ToString());
    }

    public static Task<CliRun> RunAsync(params string[] args) => RunAsync(args, "");
}

internal sealed record CliRun(int ExitCode, string Out, string Error);
