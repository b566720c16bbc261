namespace Broker.Cli;

/// <summary>brokerctl's exit codes; scripts branch on them, so they never change meaning.</summary>
public static class ExitCodes
{
    /// <summary>The command did what was asked.</summary>
    public const int Success = 0;

    /// <summary>Broker refused (the reason is on stderr), or a policy file did not validate.</summary>
    public const int Refused = 1;

    /// <summary>The command line is wrong: unknown command or option, missing or invalid value.</summary>
    public const int Usage = 2;

    /// <summary>Broker could not be reached, timed out, or said it is unavailable; retrying later may work.</summary>
    public const int Unavailable = 3;

    /// <summary>Something local is wrong: a file is missing, unreadable or invalid, or the dev environment is not set up.</summary>
    public const int LocalError = 4;

    /// <summary><c>brokerctl issue</c> without --wait: the scopes need approval; the approval id is printed.</summary>
    public const int Pending = 5;

    /// <summary>The table printed at the end of every command's help.</summary>
    public const string HelpText = """
        Exit codes:
          0  success
          1  refused by the broker (REASON: message and metadata on stderr); policy invalid
          2  usage error (unknown command or option, missing or invalid value)
          3  broker unreachable, timed out or unavailable (retrying later may work)
          4  local error (file missing, unreadable or invalid; dev environment not set up)
          5  pending: the request waits for approval (brokerctl issue without --wait)
        """;
}
