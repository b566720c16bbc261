namespace Broker.Cli;

/// <summary>What a command talks to besides its arguments; tests swap every piece.</summary>
internal sealed record CliContext(
    TextWriter Out,
    TextWriter Error,
    TextReader In,
    TimeProvider Time,
    Func<string, string?> GetEnvironmentVariable)
{
    public static CliContext ForConsole(TextWriter stdout, TextWriter stderr) =>
        new(stdout, stderr, Console.In, TimeProvider.System, Environment.GetEnvironmentVariable);
}
