using System.Text.Json;
using System.Text.Unicode;

namespace Broker.Core.Audit;

/// <summary>The chain fields of one record, read without materialising the event.</summary>
public readonly record struct AuditRecordHeader(long Seq, string Node, string Prev, int EventId)
{
    /// <summary>
    /// Reads seq, node, prev and event_id, and checks the whole line is one well-formed JSON
    /// object. False when it is not, or when a chain field is missing.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> line, out AuditRecordHeader header)
    {
        header = default;
        long seq = -1;
        string? node = null;
        string? prev = null;
        var eventId = 0;

        // A record is UTF-8 JSON; a byte that is not UTF-8 is damage, and the JSON reader would
        // throw (not refuse) when asked to transcode it.
        if (!Utf8.IsValid(line))
        {
            return false;
        }

        try
        {
            var reader = new Utf8JsonReader(line, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 16 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("seq"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out seq))
                    {
                        return false;
                    }
                }
                else if (reader.ValueTextEquals("node"u8))
                {
                    reader.Read();
                    node = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                }
                else if (reader.ValueTextEquals("prev"u8))
                {
                    reader.Read();
                    prev = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                }
                else if (reader.ValueTextEquals("event_id"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt32(out eventId))
                    {
                        return false;
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }

            // Exactly one object and nothing after it.
            if (reader.TokenType != JsonTokenType.EndObject || reader.CurrentDepth != 0 || reader.BytesConsumed != line.Length)
            {
                return false;
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            return false;
        }

        if (seq < 1 || node is null || prev is null)
        {
            return false;
        }

        header = new AuditRecordHeader(seq, node, prev, eventId);
        return true;
    }
}
