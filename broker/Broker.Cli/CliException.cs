namespace Broker.Cli;

/// <summary>A failure a command reports as one line on stderr and an exit code. Messages never carry tokens.</summary>
internal sealed class CliException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;

    public static CliException Usage(string message) => new(ExitCodes.Usage, message);

    public static CliException Local(string message) => new(ExitCodes.LocalError, message);
}
