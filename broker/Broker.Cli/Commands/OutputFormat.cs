using System.CommandLine;

namespace Broker.Cli.Commands;

/// <summary>--output: aligned key/value lines for people, or one JSON object for scripts.</summary>
internal static class OutputFormat
{
    public const string Table = "table";
    public const string Json = "json";

    public static Option<string> CreateOption()
    {
        var option = new Option<string>("--output", "-o")
        {
            Description = "How to print the result: 'table' (aligned key/value lines) or 'json' (one object).",
            HelpName = "table|json",
            DefaultValueFactory = _ => Table,
        };
        option.AcceptOnlyFromAmong(Table, Json);
        return option;
    }

    public static void WriteTable(TextWriter output, IReadOnlyList<(string Key, string Value)> rows)
    {
        var width = rows.Max(row => row.Key.Length) + 2;
        foreach (var (key, value) in rows)
        {
            output.WriteLine(key.PadRight(width) + value);
        }
    }
}
