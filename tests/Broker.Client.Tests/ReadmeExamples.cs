namespace Broker.Client.Tests;

/// <summary>
/// The README's runnable examples: each <c>```console</c> block right after a
/// <c>&lt;!-- brokerctl-example: NAME --&gt;</c> line, as commands (<c>$ </c> lines, with
/// <c>\</c> continuations) and the output shown under each. Blank lines are layout. A line
/// starting with <c># </c> inside the output says that what follows is the rest of the output
/// of the command started in the background (<c>&amp;</c>) earlier in the block.
/// </summary>
internal static class ReadmeExamples
{
    public const string Marker = "<!-- brokerctl-example: ";

    public static IReadOnlyList<Example> Parse(string markdown)
    {
        var lines = markdown.ReplaceLineEndings("\n").Split('\n');
        var examples = new List<Example>();
        for (var i = 0; i < lines.Length; i++)
        {
            if (!lines[i].StartsWith(Marker, StringComparison.Ordinal))
            {
                continue;
            }

            var name = lines[i][Marker.Length..].TrimEnd().TrimEnd('>').TrimEnd('-').Trim();
            if (i + 1 >= lines.Length || lines[i + 1] != "```console")
            {
                throw new FormatException($"README line {i + 1}: the marker '{name}' must be followed by a ```console block.");
            }

            var steps = new List<Step>();
            for (i += 2; i < lines.Length && lines[i] != "```"; i++)
            {
                var line = lines[i];
                if (line.StartsWith("$ ", StringComparison.Ordinal))
                {
                    var command = line[2..];
                    while (command.EndsWith('\\') && i + 1 < lines.Length)
                    {
                        command = command[..^1].TrimEnd() + " " + lines[++i].Trim();
                    }

                    steps.Add(new Step(command, []));
                }
                else if (line.StartsWith("# ", StringComparison.Ordinal))
                {
                    steps.Add(new Step(null, []));
                }
                else if (line.Trim().Length > 0)
                {
                    if (steps.Count == 0)
                    {
                        throw new FormatException($"README line {i + 1}: output before any command in '{name}'.");
                    }

                    steps[^1].Expected.Add(line);
                }
            }

            examples.Add(new Example(name, steps));
        }

        return examples;
    }

    public sealed record Example(string Name, IReadOnlyList<Step> Steps);

    /// <param name="Command">The command line; null for the rest of the background command's output.</param>
    public sealed record Step(string? Command, List<string> Expected);
}
