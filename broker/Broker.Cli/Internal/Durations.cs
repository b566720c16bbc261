using System.Globalization;
using System.Text.RegularExpressions;

namespace Broker.Cli.Internal;

/// <summary>Durations written the way the policy file writes them: a whole number and s, m or h (30s, 5m, 1h).</summary>
internal static partial class Durations
{
    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = default;
        var match = text is null ? Match.Empty : DurationRegex().Match(text);
        if (!match.Success || !long.TryParse(match.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var amount))
        {
            return false;
        }

        var seconds = match.Groups[2].Value switch
        {
            "s" => amount,
            "m" => amount * 60,
            _ => amount * 3600,
        };
        value = TimeSpan.FromSeconds(seconds);
        return seconds > 0;
    }

    /// <summary>Largest exact unit first: 5m, 90s, 1h 30m.</summary>
    public static string Format(TimeSpan value)
    {
        if (value < TimeSpan.Zero)
        {
            return "-" + Format(value.Negate());
        }

        var parts = new List<string>(3);
        if (value.Hours + (value.Days * 24) > 0)
        {
            parts.Add($"{value.Hours + (value.Days * 24)}h");
        }

        if (value.Minutes > 0)
        {
            parts.Add($"{value.Minutes}m");
        }

        if (value.Seconds > 0 || parts.Count == 0)
        {
            parts.Add($"{value.Seconds}s");
        }

        return string.Join(' ', parts);
    }

    // At most 7 digits keeps the arithmetic far from overflow; the broker caps TTLs anyway.
    [GeneratedRegex(@"^([0-9]{1,7})(s|m|h)$", RegexOptions.CultureInvariant)]
    private static partial Regex DurationRegex();
}
