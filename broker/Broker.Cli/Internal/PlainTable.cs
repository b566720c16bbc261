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

    // Rows are rendered this many at a time, all with the widths measured over every row: the
    // columns line up across renders, and a long listing (audit query) streams out in bounded memory.
    private const int RowsPerRender = 256;

    /// <param name="headers">Column titles; null writes rows only (e.g. later pages of a stream).</param>
    public static void Write(TextWriter output, IReadOnlyList<string>? headers, IReadOnlyList<IReadOnlyList<string>> rows, bool colour)
    {
        var columns = headers?.Count ?? (rows.Count == 0 ? 0 : rows[0].Count);
        if (columns == 0)
        {
            return;
        }

        var cells = rows.Select(row => row.Count == columns
            ? row.Select(cell => new Text(OneLine(cell))).ToArray()
            : throw new ArgumentException($"a row has {row.Count} cells, the table {columns} columns", nameof(rows))).ToList();
        var headerStyle = colour ? new Style(decoration: Decoration.Bold) : Style.Plain;
        var titles = headers?.Select(title => new Text(title, headerStyle)).ToArray();

        var rendered = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = colour ? AnsiSupport.Yes : AnsiSupport.No,
            ColorSystem = colour ? ColorSystemSupport.Standard : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(rendered),
        });
        console.Profile.Width = UnwrappedWidth;
        var widths = Widths(RenderOptions.Create(console), titles, cells, columns);

        for (var first = 0; first == 0 || first < cells.Count; first += RowsPerRender)
        {
            var table = new Table().NoBorder();
            for (var i = 0; i < columns; i++)
            {
                table.AddColumn(new TableColumn(first == 0 && titles is not null ? titles[i] : new Text(""))
                {
                    Padding = i == columns - 1 ? None : Gap,
                    NoWrap = true,
                    Width = widths[i],
                });
            }

            if (first > 0 || titles is null)
            {
                table.HideHeaders();
            }

            foreach (var row in cells.Skip(first).Take(RowsPerRender))
            {
                table.AddRow(row);
            }

            console.Write(table);
            foreach (var line in rendered.ToString().ReplaceLineEndings("\n").TrimEnd('\n').Split('\n'))
            {
                output.WriteLine(line.TrimEnd(' '));
            }

            rendered.GetStringBuilder().Clear();
        }
    }

    private static int[] Widths(RenderOptions options, Text[]? titles, List<Text[]> cells, int columns)
    {
        var widths = new int[columns];
        foreach (var row in titles is null ? cells : cells.Prepend(titles))
        {
            for (var i = 0; i < columns; i++)
            {
                widths[i] = Math.Max(widths[i], ((IRenderable)row[i]).Measure(options, UnwrappedWidth).Max);
            }
        }

        return widths;
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
