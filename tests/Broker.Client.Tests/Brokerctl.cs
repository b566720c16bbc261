using System.Text;
using Broker.Cli;

namespace Broker.Client.Tests;

/// <summary>
/// The built brokerctl as a person runs it: a child process (<c>dotnet brokerctl.dll</c>), its
/// stdout a pipe, or a terminal through <c>script</c>'s pseudo-terminal.
/// </summary>
internal static class Brokerctl
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(2);

    public static string Dll => typeof(BrokerCtl).Assembly.Location;

    /// <summary>stdout and stderr are pipes, as in <c>brokerctl ... | jq</c> or <c>$(brokerctl ...)</c>.</summary>
    public static Task<(int Code, string Out, string Error)> RunAsync(params string[] args) =>
        ChildProcess.RunToExitAsync("dotnet", Bound, [Dll, .. args]);

    /// <summary>
    /// stdout is a terminal (util-linux <c>script</c> runs the command on a pseudo-terminal and
    /// copies what it wrote); <paramref name="environment"/> is set or, for null values, unset.
    /// </summary>
    public static async Task<(int Code, string Out)> RunOnTerminalAsync(IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var command = new StringBuilder("env");
        foreach (var (name, value) in environment)
        {
            command.Append(value is null ? $" -u {name}" : $" {name}={Quote(value)}");
        }

        command.Append(" dotnet ").Append(Quote(Dll));
        foreach (var arg in args)
        {
            command.Append(' ').Append(Quote(arg));
        }

        var (code, stdout, stderr) = await ChildProcess.RunToExitAsync("script", Bound, "--quiet", "--return", "--command", command.ToString(), "/dev/null");
        return (code, stdout + stderr);
    }

    private static string Quote(string value) => "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
