using Spectre.Console;
using Spectre.Console.Rendering;

namespace Broker.Cli.Internal;

/// <summary>
/// Renders brokerctl's tables with Spectre.Console: no border (so awk, cut and copy-paste see only
/// the fields), columns two spaces apart, the last column and trailing spaces trimmed, one line per
/// row whatever a cell holds. The only styling is a bold header row, and only when
/// <c>colour</c> is on (a terminal without NO_COLOR, see <see cref="CliContext.Colour"/>).
/// </summary>
internal static class PlainTable
{
    // Spectre wraps to the console width; a table line is never wrapped here (a token or digest
    // split over two lines cannot be pasted), the terminal wraps what it must.
    private const int UnwrappedWidth = 1 << 16;

    private static readonly Padding Gap = new(0, 0, 2, 0);
    private static readonly Padding None = new(0, 0, 0, 0);

    /// <param name="headers">Column titles; null writes rows only (e.g. later pages of a stream).</param>
    public static void Write(TextWriter output, IReadOnlyList<string>? headers, IReadOnlyList<IReadOnlyList<string>> rows, bool colour)
    {
        var columns = headers?.Count ?? (rows.Count == 0 ? 0 : rows[0].Count);
        if (columns == 0)
        {
            return;
        }

        var table = new Table().NoBorder();
        var headerStyle = colour ? new Style(decoration: Decoration.Bold) : Style.Plain;
        for (var i = 0; i < columns; i++)
        {
            table.AddColumn(new TableColumn(new Text(headers?[i] ?? "", headerStyle)) { Padding = i == columns - 1 ? None : Gap, NoWrap = true });
        }

        if (headers is null)
        {
            table.HideHeaders();
        }

        foreach (var row in rows)
        {
            if (row.Count != columns)
            {
                throw new ArgumentException($"a row has {row.Count} cells, the table {columns} columns", nameof(rows));
            }

            table.AddRow(row.Select(cell => (IRenderable)new Text(OneLine(cell))));
        }

        var rendered = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = colour ? AnsiSupport.Yes : AnsiSupport.No,
            ColorSystem = colour ? ColorSystemSupport.Standard : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(rendered),
        });
        console.Profile.Width = UnwrappedWidth;
        console.Write(table);
        foreach (var line in rendered.ToString().ReplaceLineEndings("\n").TrimEnd('\n').Split('\n'))
        {
            output.WriteLine(line.TrimEnd(' '));
        }
    }

    /// <summary>
    /// A cell is free text (a reason, an agent's justification): control characters become spaces,
    /// so a row stays one line and no field can smuggle a terminal escape sequence.
    /// </summary>
    public static string OneLine(string value) => string.Create(value.Length, value, static (span, text) =>
    {
        for (var i = 0; i < text.Length; i++)
        {
            span[i] = char.IsControl(text[i]) ? ' ' : text[i];
        }
    });
}
