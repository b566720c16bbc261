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

    /// <summary>A header row and aligned columns, two spaces apart; the last column is not padded.</summary>
    /// <param name="headers">Column titles; null writes rows only (e.g. one row at a time while following a stream).</param>
    public static void WriteColumns(TextWriter output, IReadOnlyList<string>? headers, IReadOnlyList<IReadOnlyList<string>> rows)
    {
        var columns = headers?.Count ?? (rows.Count == 0 ? 0 : rows[0].Count);
        var widths = Enumerable.Range(0, columns).Select(i => Math.Max(headers?[i].Length ?? 0, rows.Count == 0 ? 0 : rows.Max(row => row[i].Length))).ToArray();
        if (headers is not null)
        {
            WriteRow(output, headers, widths);
        }

        foreach (var row in rows)
        {
            WriteRow(output, row, widths);
        }
    }

    private static void WriteRow(TextWriter output, IReadOnlyList<string> cells, int[] widths)
    {
        var line = new System.Text.StringBuilder();
        for (var i = 0; i < cells.Count; i++)
        {
            line.Append(i == cells.Count - 1 ? cells[i] : cells[i].PadRight(widths[i] + 2));
        }

        output.WriteLine(line.ToString().TrimEnd());
    }
}
