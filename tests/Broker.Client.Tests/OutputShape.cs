using System.Text.RegularExpressions;

namespace Broker.Client.Tests;

/// <summary>
/// Compares what a command printed with what the docs show, by shape: the same lines, keys,
/// column headers and words, with ids, digests, tokens, times, durations and ports standing for
/// any value of their kind and alignment spaces ignored. A line <c>...</c> stands for any lines.
/// </summary>
internal static partial class OutputShape
{
    public const string AnyLines = "...";

    public static string Of(string line)
    {
        var shape = Jwt().Replace(line, "<jwt>");
        shape = Digest().Replace(shape, "<digest>");
        shape = ApprovalId().Replace(shape, "<approval>");
        shape = Timestamp().Replace(shape, "<time>");
        shape = Duration().Replace(shape, "<duration>");
        shape = LoopbackPort().Replace(shape, "127.0.0.1:<port>");
        shape = LongNumber().Replace(shape, "<n>");
        shape = NodeId().Replace(shape, "<node>");
        shape = RandomId().Replace(shape, match => match.Value.Any(c => char.IsUpper(c) || char.IsDigit(c) || c == '_') ? "<id>" : match.Value);
        return Spaces().Replace(shape, " ").Trim();
    }

    /// <summary>Null when <paramref name="actual"/> has the shape of <paramref name="expected"/>, else what differs.</summary>
    public static string? Mismatch(IReadOnlyList<string> expected, IReadOnlyList<string> actual)
    {
        var want = expected.Select(Of).ToList();
        var got = actual.Where(l => l.Trim().Length > 0).Select(Of).ToList();
        return Matches(want, 0, got, 0)
            ? null
            : "expected the shape of:\n  " + string.Join("\n  ", want) + "\nbut the output was:\n  " + string.Join("\n  ", got);
    }

    private static bool Matches(List<string> want, int w, List<string> got, int g)
    {
        if (w == want.Count)
        {
            return g == got.Count;
        }

        if (want[w] == AnyLines)
        {
            for (var skip = g; skip <= got.Count; skip++)
            {
                if (Matches(want, w + 1, got, skip))
                {
                    return true;
                }
            }

            return false;
        }

        return g < got.Count && want[w] == got[g] && Matches(want, w + 1, got, g + 1);
    }

    [GeneratedRegex(@"eyJ[A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]*)*(\.\.\.)?")]
    private static partial Regex Jwt();

    [GeneratedRegex(@"sha256:[0-9a-f]+(\.\.\.)?")]
    private static partial Regex Digest();

    [GeneratedRegex(@"apr_[0-9a-f]+(\.\.\.)?")]
    private static partial Regex ApprovalId();

    [GeneratedRegex(@"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")]
    private static partial Regex Timestamp();

    [GeneratedRegex(@"\b\d+[hms](?: \d+[ms])*\b")]
    private static partial Regex Duration();

    [GeneratedRegex(@"127\.0\.0\.1:\d+")]
    private static partial Regex LoopbackPort();

    [GeneratedRegex(@"\b\d{9,}\b")]
    private static partial Regex LongNumber();

    // An audit node id: the host name and 8 hex digits (FileAuditSink).
    [GeneratedRegex(@"(?<![A-Za-z0-9._\-])[A-Za-z0-9._\-]*-[0-9a-f]{8}(?![A-Za-z0-9._\-])")]
    private static partial Regex NodeId();

    [GeneratedRegex(@"(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]{16,}(?![A-Za-z0-9_\-])")]
    private static partial Regex RandomId();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();
}
