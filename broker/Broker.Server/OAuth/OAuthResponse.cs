using System.Text.Json;

namespace Broker.Server.OAuth;

/// <summary>
/// Writes token-endpoint answers: JSON, never cached (RFC 6749 section 5.1), and every error
/// with the Broker reason both in <c>broker_reason</c> and at the start of <c>error_description</c>.
/// </summary>
internal static class OAuthResponse
{
    /// <summary>Member of every error answer holding Broker's stable reason code (docs/errors.md).</summary>
    public const string ReasonMember = "broker_reason";

    /// <summary>Member holding the refusal's metadata (e.g. the scopes refused), when it has any.</summary>
    public const string MetadataMember = "broker_metadata";

    public static Task WriteAsync(HttpContext context, int status, Action<Utf8JsonWriter> members)
    {
        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = "application/json";
        response.Headers.CacheControl = "no-store";
        response.Headers.Pragma = "no-cache";
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            members(writer);
            writer.WriteEndObject();
        }

        return response.Body.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length)).AsTask();
    }

    public static Task ErrorAsync(
        HttpContext context,
        string error,
        string reason,
        string message,
        IReadOnlyDictionary<string, string>? metadata = null,
        Action<Utf8JsonWriter>? more = null,
        int? status = null)
    {
        status ??= OAuthErrorMap.StatusOf(error);
        if (status == StatusCodes.Status401Unauthorized)
        {
            context.Response.Headers.WWWAuthenticate = "Bearer realm=\"broker\"";
        }

        return WriteAsync(context, status.Value, writer =>
        {
            writer.WriteString("error", error);
            writer.WriteString("error_description", Description(reason, message));
            writer.WriteString(ReasonMember, reason);
            if (metadata is { Count: > 0 })
            {
                writer.WriteStartObject(MetadataMember);
                foreach (var (key, value) in metadata)
                {
                    writer.WriteString(key, value);
                }

                writer.WriteEndObject();
            }

            more?.Invoke(writer);
        });
    }

    // RFC 6749 limits error_description to printable ASCII except '"' and '\'.
    private static string Description(string reason, string message)
    {
        var text = reason + ": " + message;
        return string.Create(text.Length, text, (span, source) =>
        {
            for (var i = 0; i < source.Length; i++)
            {
                var c = source[i];
                span[i] = c switch
                {
                    '"' => '\'',
                    '\\' => '/',
                    >= ' ' and <= '~' => c,
                    _ => '?',
                };
            }
        });
    }
}
