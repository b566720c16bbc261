using System.Text.Json;
using System.Text.Json.Serialization;

namespace Broker.Core.Audit;

/// <summary>The audit line format: one JSON object per line, snake_case, nulls omitted.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AuditEvent))]
[JsonSerializable(typeof(AuditCheckpoint))]
[JsonSerializable(typeof(AuditHead))]
[JsonSerializable(typeof(List<AuditHead>))]
public sealed partial class AuditJsonContext : JsonSerializerContext
{
    /// <summary>The event's own JSON and a newline (the sink adds seq, node and prev in front when it writes).</summary>
    public static byte[] ToLine(AuditEvent auditEvent)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(auditEvent, Default.AuditEvent);
        var line = new byte[json.Length + 1];
        json.CopyTo(line, 0);
        line[^1] = (byte)'\n';
        return line;
    }
}
