namespace Broker.Server.OperatorConsole;

/// <summary>Only console paths on this host are redirect targets (no open redirect through returnUrl).</summary>
internal static class ConsoleRedirects
{
    public static string Local(string? target) =>
        target is { Length: > 0 and <= 512 }
        && target.StartsWith(ConsolePaths.Root, StringComparison.Ordinal)
        && (target.Length == ConsolePaths.Root.Length || target[ConsolePaths.Root.Length] is '/' or '?')
        && !target.Contains('\\') && !target.Contains("//", StringComparison.Ordinal) && !target.Any(char.IsControl)
            ? target
            : ConsolePaths.Root;
}
