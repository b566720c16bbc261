namespace Broker.Core.Audit;

public static class AuditOutcomes
{
    public const string Success = "success";
    public const string Failure = "failure";
}

/// <summary>Bounds caller-supplied text before it enters the audit log (JSON encoding escapes the rest).</summary>
public static class AuditText
{
    public static string? Bound(string? text, int max)
    {
        if (text is null)
        {
            return null;
        }

        return text.Length <= max ? text : string.Concat(text.AsSpan(0, max), "…");
    }
}
