using Broker.Core.Errors;

namespace Broker.Core.Issuance;

/// <summary>Shape checks on caller input, before policy is consulted. Each failure names its field.</summary>
internal static class RequestValidator
{
    public static void ValidateTaskId(string taskId)
    {
        if (string.IsNullOrEmpty(taskId))
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.TaskIdInvalid, "task_id is required.");
        }

        if (taskId.Length > IssuanceOptions.MaxTaskIdLength)
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.TaskIdInvalid, $"task_id is longer than {IssuanceOptions.MaxTaskIdLength} characters.");
        }

        foreach (var c in taskId)
        {
            if (char.IsControl(c) || char.IsWhiteSpace(c) || char.IsSurrogate(c) || c is '\u2028' or '\u2029' or '\u200B' or '\uFEFF')
            {
                throw BrokerErrors.InvalidArgument(BrokerErrors.TaskIdInvalid, "task_id contains control, whitespace or invisible characters.");
            }
        }
    }

    public static TaskPhase ValidatePhase(TaskPhase? phase) =>
        phase ?? throw BrokerErrors.InvalidArgument(BrokerErrors.PhaseInvalid, "phase must be planning, execution or recovery.");

    /// <summary>Returns the scopes de-duplicated, in request order.</summary>
    public static IReadOnlyList<string> ValidateScopes(IReadOnlyList<string> scopes)
    {
        if (scopes.Count == 0)
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.ScopesInvalid, "At least one scope is required.");
        }

        if (scopes.Count > IssuanceOptions.MaxScopes)
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.ScopesInvalid, $"At most {IssuanceOptions.MaxScopes} scopes may be requested.");
        }

        var duplicates = false;
        for (var i = 0; i < scopes.Count; i++)
        {
            if (!IsScopeToken(scopes[i]))
            {
                throw BrokerErrors.InvalidArgument(BrokerErrors.ScopesInvalid, $"Scopes are 1 to {IssuanceOptions.MaxScopeLength} printable ASCII characters without spaces or quotes.");
            }

            duplicates = duplicates || IndexOf(scopes, scopes[i], i) >= 0;
        }

        if (!duplicates)
        {
            return scopes;
        }

        // Rare: the first of each repeated scope stays, in request order.
        var distinct = new List<string>(scopes.Count);
        for (var i = 0; i < scopes.Count; i++)
        {
            if (IndexOf(scopes, scopes[i], i) < 0)
            {
                distinct.Add(scopes[i]);
            }
        }

        return distinct;
    }

    // At most MaxScopes entries: a scan beats building a set on every issuance.
    private static int IndexOf(IReadOnlyList<string> scopes, string scope, int before)
    {
        for (var i = 0; i < before; i++)
        {
            if (string.Equals(scopes[i], scope, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }

    public static void ValidateAudience(string audience)
    {
        if (string.IsNullOrEmpty(audience) || audience.Length > IssuanceOptions.MaxAudienceLength || !IsPrintableAscii(audience))
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.AudienceInvalid, $"audience is required: 1 to {IssuanceOptions.MaxAudienceLength} printable ASCII characters.");
        }
    }

    public static void ValidateTtl(TimeSpan? ttl)
    {
        if (ttl is { } value && value <= TimeSpan.Zero)
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.TtlInvalid, "requested_ttl must be positive when set.");
        }
    }

    public static string? ValidateText(string? text, string field, int max)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        if (text.Length > max)
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.TextTooLong, $"{field} is longer than {max} characters.");
        }

        return text;
    }

    // RFC 6749 scope-token: %x21 / %x23-5B / %x5D-7E.
    private static bool IsScopeToken(string scope)
    {
        if (scope.Length is 0 or > IssuanceOptions.MaxScopeLength)
        {
            return false;
        }

        foreach (var c in scope)
        {
            if (c < 0x21 || c > 0x7E || c == '"' || c == '\\')
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsPrintableAscii(string text)
    {
        foreach (var c in text)
        {
            if (c < 0x21 || c > 0x7E)
            {
                return false;
            }
        }

        return true;
    }
}
