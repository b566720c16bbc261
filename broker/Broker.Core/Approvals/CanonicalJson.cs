using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Broker.Core.Approvals;

/// <summary>
/// RFC 8785 JSON Canonicalization Scheme (JCS) for the values Broker digests: objects, arrays,
/// strings, integers, booleans and null. Members are sorted by their names' UTF-16 code units;
/// strings are written as ECMAScript's <c>JSON.stringify</c> writes them (only <c>"</c>,
/// <c>\</c> and control characters escaped; everything else, non-ASCII included, as UTF-8);
/// no whitespace. Anyone can recompute the bytes with a JCS library or a few lines of
/// JavaScript, which is the point: a digest an approver cannot recompute proves nothing.
/// </summary>
public static class CanonicalJson
{
    /// <summary>The canonical UTF-8 bytes of <paramref name="value"/>.</summary>
    /// <exception cref="ArgumentException">A non-integer number, or a string that is not well-formed UTF-16 (a lone surrogate): I-JSON forbids both here.</exception>
    public static byte[] Serialize(JsonNode? value)
    {
        var text = new StringBuilder();
        Write(text, value);
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    private static void Write(StringBuilder text, JsonNode? value)
    {
        switch (value)
        {
            case null:
                text.Append("null");
                break;
            case JsonObject obj:
                text.Append('{');
                var first = true;
                foreach (var (name, member) in obj.OrderBy(m => m.Key, StringComparer.Ordinal))
                {
                    if (!first)
                    {
                        text.Append(',');
                    }

                    first = false;
                    WriteString(text, name);
                    text.Append(':');
                    Write(text, member);
                }

                text.Append('}');
                break;
            case JsonArray array:
                text.Append('[');
                for (var i = 0; i < array.Count; i++)
                {
                    if (i > 0)
                    {
                        text.Append(',');
                    }

                    Write(text, array[i]);
                }

                text.Append(']');
                break;
            case JsonValue scalar when scalar.TryGetValue<string>(out var s):
                WriteString(text, s);
                break;
            case JsonValue scalar when scalar.TryGetValue<bool>(out var b):
                text.Append(b ? "true" : "false");
                break;
            case JsonValue scalar when scalar.TryGetValue<int>(out var i):
                text.Append(i.ToString(CultureInfo.InvariantCulture));
                break;
            case JsonValue scalar when scalar.TryGetValue<long>(out var n) && Math.Abs(n) <= MaxSafeInteger:
                // Integers within 2^53 print the same in ECMAScript's Number serialization.
                text.Append(n.ToString(CultureInfo.InvariantCulture));
                break;
            default:
                throw new ArgumentException("Only strings, integers (|n| ≤ 2^53), booleans, null, arrays and objects are canonicalized.", nameof(value));
        }
    }

    private const long MaxSafeInteger = (1L << 53) - 1;

    private static void WriteString(StringBuilder text, string value)
    {
        text.Append('"');
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            switch (c)
            {
                case '"':
                    text.Append("\\\"");
                    break;
                case '\\':
                    text.Append("\\\\");
                    break;
                case '\b':
                    text.Append("\\b");
                    break;
                case '\f':
                    text.Append("\\f");
                    break;
                case '\n':
                    text.Append("\\n");
                    break;
                case '\r':
                    text.Append("\\r");
                    break;
                case '\t':
                    text.Append("\\t");
                    break;
                case < ' ':
                    text.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    break;
                default:
                    if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
                    {
                        text.Append(c).Append(value[++i]);
                    }
                    else if (char.IsSurrogate(c))
                    {
                        throw new ArgumentException("A string holds a lone surrogate; it has no UTF-8 form.", nameof(value));
                    }
                    else
                    {
                        text.Append(c);
                    }

                    break;
            }
        }

        text.Append('"');
    }
}
