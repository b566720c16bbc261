using System.CommandLine;
using Broker.Cli.Internal;

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

    /// <summary>Key/value lines: keys in one column, values two spaces after the longest key.</summary>
    public static void WriteTable(TextWriter output, IReadOnlyList<(string Key, string Value)> rows) =>
        PlainTable.Write(output, headers: null, rows.Select(row => (IReadOnlyList<string>)[row.Key, row.Value]).ToList(), colour: false);

    /// <summary>A header row and aligned columns, two spaces apart; the last column is not padded.</summary>
    /// <param name="headers">Column titles; null writes rows only (e.g. one page at a time while following a stream).</param>
    /// <param name="colour">Bold headers: only for a terminal without NO_COLOR (<see cref="CliContext.Colour"/>).</param>
    public static void WriteColumns(TextWriter output, IReadOnlyList<string>? headers, IReadOnlyList<IReadOnlyList<string>> rows, bool colour = false) =>
        PlainTable.Write(output, headers, rows, colour);
}
