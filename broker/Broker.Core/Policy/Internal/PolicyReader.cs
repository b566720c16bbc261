using System.Globalization;
using System.Text.RegularExpressions;

namespace Broker.Core.Policy.Internal;

/// <summary>Reads one key's value into a draft; errors go to the reader, never thrown.</summary>
internal delegate void KeyReader<in TDraft>(PolicyReader reader, TDraft draft, YNode value, string path);

/// <summary>One allowed key of a mapping. A mapping's schema is a list of these.</summary>
internal sealed record KeySpec<TDraft>(string Name, bool Required, KeyReader<TDraft> Read);

/// <summary>
/// Typed access to the YAML tree that records every problem with its position and keeps
/// going, so one load reports all errors. Each read returns null when the value is unusable.
/// </summary>
internal sealed partial class PolicyReader(string file, string baseDirectory)
{
    private readonly List<PolicyError> _errors = [];

    public string File { get; } = file;

    public string BaseDirectory { get; } = baseDirectory;

    public IReadOnlyList<PolicyError> Errors => _errors;

    public void Error(int line, int column, string message) => _errors.Add(new PolicyError(File, line, column, message));

    public void Error(YNode node, string path, string message) =>
        Error(node.Line, node.Column, path.Length == 0 ? message : $"{path}: {message}");

    public static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";

    /// <summary>
    /// Walks a mapping against its schema: unknown keys, duplicate keys and missing required
    /// keys are errors; each known key is handed to its reader once (the first occurrence).
    /// </summary>
    public bool ReadMapping<TDraft>(YNode node, string path, IReadOnlyList<KeySpec<TDraft>> schema, TDraft draft, string keyNoun = "key")
    {
        if (node is not YMapping mapping)
        {
            Error(node, path, $"must be a mapping, found {node.Describe()}");
            return false;
        }

        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (keyNode, value) in mapping.Entries)
        {
            if (keyNode is not YScalar { IsNull: false } key)
            {
                Error(keyNode, path, $"a {keyNoun} must be plain text, found {keyNode.Describe()}");
                continue;
            }

            if (seen.TryGetValue(key.Value, out var firstLine))
            {
                Error(key, path, $"duplicate {keyNoun} '{key.Value}' (first at line {firstLine})");
                continue;
            }

            seen[key.Value] = key.Line;
            var spec = FindSpec(schema, key.Value);
            if (spec is null)
            {
                Error(key, path, UnknownKeyMessage(key.Value, schema, keyNoun));
                continue;
            }

            spec.Read(this, draft, value, Join(path, key.Value));
        }

        foreach (var spec in schema)
        {
            if (spec.Required && !seen.ContainsKey(spec.Name))
            {
                Error(mapping, path, $"missing required {keyNoun} '{spec.Name}'");
            }
        }

        return true;
    }

    /// <summary>A list; an empty value counts as an empty list when <paramref name="nullIsEmpty"/>.</summary>
    public IReadOnlyList<YNode>? ReadList(YNode node, string path, bool nullIsEmpty = false)
    {
        if (node is YSequence sequence)
        {
            return sequence.Items;
        }

        if (nullIsEmpty && node is YScalar { IsNull: true })
        {
            return [];
        }

        Error(node, path, $"must be a list, found {node.Describe()}");
        return null;
    }

    /// <summary>A non-empty single value without control characters.</summary>
    public string? ReadString(YNode node, string path, int maxLength = 1024)
    {
        if (node is not YScalar scalar)
        {
            Error(node, path, $"must be a single value, found {node.Describe()}");
            return null;
        }

        if (scalar.IsNull || scalar.Value.Length == 0)
        {
            Error(node, path, "must not be empty");
            return null;
        }

        if (scalar.Value.Length > maxLength)
        {
            Error(node, path, $"is longer than {maxLength} characters");
            return null;
        }

        if (scalar.Value.Any(char.IsControl))
        {
            Error(node, path, "must not contain control characters");
            return null;
        }

        return scalar.Value;
    }

    public bool? ReadBool(YNode node, string path)
    {
        var text = ReadString(node, path);
        switch (text)
        {
            case null: return null;
            case "true": return true;
            case "false": return false;
            default:
                Error(node, path, $"must be true or false, found '{Shorten(text)}'");
                return null;
        }
    }

    public int? ReadInt(YNode node, string path)
    {
        var text = ReadString(node, path);
        if (text is null)
        {
            return null;
        }

        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value))
        {
            Error(node, path, $"must be a whole number, found '{Shorten(text)}'");
            return null;
        }

        return value;
    }

    /// <summary>A duration written <c>Ns</c>, <c>Nm</c> or <c>Nh</c> (whole numbers) within [min, max].</summary>
    public TimeSpan? ReadDuration(YNode node, string path, TimeSpan min, TimeSpan max)
    {
        var text = ReadString(node, path);
        if (text is null)
        {
            return null;
        }

        if (!TryParseDuration(text, out var value))
        {
            Error(node, path, $"'{Shorten(text)}' is not a duration; write a whole number with a unit s, m or h (e.g. 30s, 10m, 1h)");
            return null;
        }

        if (value < min || value > max)
        {
            Error(node, path, $"{text} is out of range; it must be between {FormatDuration(min)} and {FormatDuration(max)}");
            return null;
        }

        return value;
    }

    /// <summary>A file that must exist now; relative paths are resolved against the policy file's folder.</summary>
    public string? ReadExistingFile(YNode node, string path)
    {
        var text = ReadString(node, path);
        if (text is null)
        {
            return null;
        }

        string full;
        try
        {
            full = Path.GetFullPath(Path.IsPathRooted(text) ? text : Path.Combine(BaseDirectory, text));
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            Error(node, path, $"'{Shorten(text)}' is not a valid file path");
            return null;
        }

        if (!System.IO.File.Exists(full))
        {
            Error(node, path, Directory.Exists(full) ? $"'{full}' is a folder, not a file" : $"file '{full}' does not exist");
            return null;
        }

        return full;
    }

    public static bool TryParseDuration(string text, out TimeSpan value)
    {
        value = default;
        var match = DurationRegex().Match(text);
        if (!match.Success)
        {
            return false;
        }

        var amount = long.Parse(match.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture);
        value = match.Groups[2].Value switch
        {
            "s" => TimeSpan.FromSeconds(amount),
            "m" => TimeSpan.FromMinutes(amount),
            _ => TimeSpan.FromHours(amount),
        };
        return true;
    }

    /// <summary>Writes a duration back in the policy's own syntax (largest whole unit).</summary>
    public static string FormatDuration(TimeSpan value) =>
        value.Ticks % TimeSpan.TicksPerHour == 0 ? $"{(long)value.TotalHours}h"
        : value.Ticks % TimeSpan.TicksPerMinute == 0 ? $"{(long)value.TotalMinutes}m"
        : $"{(long)value.TotalSeconds}s";

    /// <summary>Keeps echoed values short in messages.</summary>
    public static string Shorten(string text) => text.Length <= 80 ? text : string.Concat(text.AsSpan(0, 77), "...");

    private static KeySpec<TDraft>? FindSpec<TDraft>(IReadOnlyList<KeySpec<TDraft>> schema, string name)
    {
        foreach (var spec in schema)
        {
            if (string.Equals(spec.Name, name, StringComparison.Ordinal))
            {
                return spec;
            }
        }

        return null;
    }

    private static string UnknownKeyMessage<TDraft>(string key, IReadOnlyList<KeySpec<TDraft>> schema, string keyNoun)
    {
        var names = schema.Select(s => s.Name).ToList();
        var closest = names
            .Select(n => (Name: n, Distance: EditDistance(key.ToLowerInvariant(), n)))
            .Where(c => c.Distance <= Math.Max(1, c.Name.Length / 3))
            .OrderBy(c => c.Distance)
            .Select(c => c.Name)
            .FirstOrDefault();
        var hint = closest is null ? "" : $"; did you mean '{closest}'?";
        return $"unknown {keyNoun} '{Shorten(key)}'{hint} (allowed: {string.Join(", ", names)})";
    }

    private static int EditDistance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }

    [GeneratedRegex("^([0-9]{1,7})([smh])$", RegexOptions.CultureInvariant)]
    private static partial Regex DurationRegex();
}
