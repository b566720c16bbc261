using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Broker.Core.Policy.Internal;

/// <summary>A YAML node with the position it was written at (1-based line and column).</summary>
internal abstract class YNode(int line, int column)
{
    public int Line { get; } = line;

    public int Column { get; } = column;

    /// <summary>How the node reads to a person, for "must be X, found Y" messages.</summary>
    public abstract string Describe();
}

internal sealed class YScalar(int line, int column, string value, bool plain) : YNode(line, column)
{
    public string Value { get; } = value;

    /// <summary>Unquoted; only plain scalars can be null.</summary>
    public bool IsPlain { get; } = plain;

    public bool IsNull => IsPlain && Value is "" or "~" or "null" or "Null" or "NULL";

    public override string Describe() => IsNull ? "an empty value" : "a single value";
}

internal sealed class YSequence(int line, int column, IReadOnlyList<YNode> items) : YNode(line, column)
{
    public IReadOnlyList<YNode> Items { get; } = items;

    public override string Describe() => "a list";
}

/// <summary>A mapping whose entries keep file order and duplicates, so duplicates can be reported, all of them.</summary>
internal sealed class YMapping(int line, int column, IReadOnlyList<KeyValuePair<YNode, YNode>> entries) : YNode(line, column)
{
    public IReadOnlyList<KeyValuePair<YNode, YNode>> Entries { get; } = entries;

    public override string Describe() => "a mapping";
}

/// <summary>Stands in for something already reported as an error (an alias, a node nested too deeply).</summary>
internal sealed class YInvalid(int line, int column) : YNode(line, column)
{
    public override string Describe() => "an unsupported value";
}

/// <summary>
/// Builds a <see cref="YNode"/> tree from YamlDotNet's parser events. YamlDotNet's own
/// representation model throws at the first duplicate key; reading events keeps every
/// duplicate (and everything after it) so all errors can be reported in one pass.
/// </summary>
internal static class YamlTreeReader
{
    private const int MaxDepth = 32;

    /// <summary>Returns the document's root, or null after reporting why there is none.</summary>
    public static YNode? Read(string text, Action<int, int, string> error)
    {
        var parser = new Parser(new StringReader(text));
        var last = (Line: 1, Column: 1);
        try
        {
            parser.Consume<StreamStart>();
            if (parser.Accept<StreamEnd>(out _))
            {
                error(1, 1, "the policy is empty");
                return null;
            }

            parser.Consume<DocumentStart>();
            var root = ReadNode(parser, error, depth: 0, ref last);
            parser.Consume<DocumentEnd>();
            if (!parser.Accept<StreamEnd>(out _))
            {
                var next = parser.Current!;
                error((int)next.Start.Line, (int)next.Start.Column, "a policy file holds one YAML document; remove the extra '---' documents");
                return null;
            }

            return root;
        }
        catch (YamlException ex)
        {
            error((int)ex.Start.Line, (int)ex.Start.Column, $"YAML syntax error: {ex.Message}");
            return null;
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet's scanner can fail this way on some unterminated flow collections.
            error(last.Line, last.Column, "YAML syntax error: unterminated flow collection ('[' or '{') or unexpected end of file");
            return null;
        }
    }

    private static YNode ReadNode(IParser parser, Action<int, int, string> error, int depth, ref (int Line, int Column) last)
    {
        var start = parser.Current!.Start;
        var line = (int)start.Line;
        var column = (int)start.Column;
        last = (line, column);

        if (depth > MaxDepth)
        {
            throw new YamlException(start, start, $"the policy nests deeper than {MaxDepth} levels");
        }

        if (parser.TryConsume<AnchorAlias>(out _))
        {
            error(line, column, "YAML aliases are not supported; write the value out in full so a review sees it");
            return new YInvalid(line, column);
        }

        if (parser.Accept<NodeEvent>(out var nodeEvent))
        {
            if (!nodeEvent.Anchor.IsEmpty)
            {
                error(line, column, "YAML anchors are not supported; write every value out in full so a review sees it");
            }

            if (!nodeEvent.Tag.IsEmpty && !IsImplicitTag(nodeEvent))
            {
                error(line, column, $"YAML tags ('{nodeEvent.Tag.Value}') are not supported");
            }
        }

        if (parser.TryConsume<Scalar>(out var scalar))
        {
            return new YScalar(line, column, scalar.Value, scalar.Style == ScalarStyle.Plain);
        }

        if (parser.TryConsume<SequenceStart>(out _))
        {
            var items = new List<YNode>();
            while (!parser.TryConsume<SequenceEnd>(out _))
            {
                items.Add(ReadNode(parser, error, depth + 1, ref last));
            }

            return new YSequence(line, column, items);
        }

        if (parser.TryConsume<MappingStart>(out _))
        {
            var entries = new List<KeyValuePair<YNode, YNode>>();
            while (!parser.TryConsume<MappingEnd>(out _))
            {
                var key = ReadNode(parser, error, depth + 1, ref last);
                var value = ReadNode(parser, error, depth + 1, ref last);
                entries.Add(new(key, value));
            }

            return new YMapping(line, column, entries);
        }

        throw new YamlException(start, start, $"unexpected {parser.Current!.GetType().Name}");
    }

    // A non-specific tag ('!') or none at all is what plain YAML produces.
    private static bool IsImplicitTag(NodeEvent nodeEvent) => nodeEvent.Tag.IsNonSpecific;
}
