using System.Text;
using System.Text.RegularExpressions;

namespace Broker.Core.Policy;

/// <summary>
/// A workload id pattern: literal text where <c>*</c> matches one path segment's worth of
/// characters (anything but <c>/</c>) and a trailing <c>/**</c> matches any deeper path.
/// e.g. <c>spiffe://example.org/agents/*</c>, <c>spiffe://example.org/ci/**</c>.
/// </summary>
public sealed partial class WorkloadPattern
{
    private readonly Regex _regex;

    private WorkloadPattern(string text, Regex regex)
    {
        Text = text;
        _regex = regex;
    }

    public string Text { get; }

    /// <summary>True for a SPIFFE ID pattern (<c>spiffe://…</c>): it matches only SPIFFE-attested identities.</summary>
    public bool IsSpiffe => Text.StartsWith("spiffe://", StringComparison.Ordinal);

    public bool IsMatch(string workloadId) => _regex.IsMatch(workloadId);

    public static bool TryParse(string text, out WorkloadPattern? pattern, out string? error)
    {
        pattern = null;
        error = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "pattern is empty";
            return false;
        }

        if (text.Contains("**", StringComparison.Ordinal) && !text.EndsWith("/**", StringComparison.Ordinal))
        {
            error = "'**' is only allowed as the last path segment ('/**')";
            return false;
        }

        if (text.IndexOf("**", StringComparison.Ordinal) != text.LastIndexOf("**", StringComparison.Ordinal))
        {
            error = "'**' may appear once";
            return false;
        }

        var body = text.EndsWith("/**", StringComparison.Ordinal) ? text[..^3] : text;
        var sb = new StringBuilder("^");
        var parts = body.Split('*');
        for (var i = 0; i < parts.Length; i++)
        {
            if (i > 0)
            {
                sb.Append("[^/]+");
            }

            sb.Append(Regex.Escape(parts[i]));
        }

        if (text.EndsWith("/**", StringComparison.Ordinal))
        {
            sb.Append("/.+");
        }

        sb.Append('$');
        pattern = new WorkloadPattern(text, new Regex(sb.ToString(), RegexOptions.CultureInvariant | RegexOptions.Compiled, TimeSpan.FromMilliseconds(50)));
        return true;
    }

    public override string ToString() => Text;
}
