namespace Broker.Cli;

/// <summary>What a command talks to besides its arguments; tests swap every piece.</summary>
internal sealed record CliContext(
    TextWriter Out,
    TextWriter Error,
    TextReader In,
    TimeProvider Time,
    Func<string, string?> GetEnvironmentVariable)
{
    /// <summary>
    /// Whether <see cref="Out"/> may carry ANSI styling (bold table headers): only when it is the
    /// process's stdout on a terminal and NO_COLOR (no-color.org) is unset or empty and TERM is not
    /// dumb. Redirected or piped output is always plain text.
    /// </summary>
    public bool Colour { get; init; }

    public static CliContext ForConsole(TextWriter stdout, TextWriter stderr) =>
        new(stdout, stderr, Console.In, TimeProvider.System, Environment.GetEnvironmentVariable)
        {
            Colour = ReferenceEquals(stdout, Console.Out) && AllowsColour(Console.IsOutputRedirected, Environment.GetEnvironmentVariable),
        };

    internal static bool AllowsColour(bool redirected, Func<string, string?> environment) =>
        !redirected
        && string.IsNullOrEmpty(environment("NO_COLOR"))
        && !string.Equals(environment("TERM"), "dumb", StringComparison.Ordinal);
}
