using System.Buffers.Text;
using System.Text.Json;

namespace Broker.Jose;

/// <summary>A compact JWS that does not meet <see cref="CompactJws"/>'s rules; the message names the part.</summary>
public sealed class JoseFormatException(string message) : FormatException(message);

/// <summary>
/// Strict reading of a compact JWS before any library parses it, shared by every JWS Broker
/// accepts (attestation proofs, security event tokens, DPoP proofs). The library is lenient in
/// ways an attacker can use (JSON serialization, nested JWTs, duplicate keys where the last one
/// wins, malleable base64url); here each of those fails closed.
/// </summary>
public static class CompactJws
{
    // Nesting in real tokens is shallow (Kubernetes claims go three deep); this bounds the parser.
    private const int MaxJsonDepth = 16;

    private static readonly JsonReaderOptions ReaderOptions = new()
    {
        MaxDepth = MaxJsonDepth,
        CommentHandling = JsonCommentHandling.Disallow,
        AllowTrailingCommas = false,
    };

    /// <summary>
    /// Splits <paramref name="token"/> into its three segments: only the base64url alphabet and
    /// exactly two dots (JSON serialization, whitespace and five-segment JWEs are refused).
    /// </summary>
    public static (Range Header, Range Payload, Range Signature) Split(string token, string noun)
    {
        var dots = 0;
        foreach (var c in token)
        {
            if (c == '.')
            {
                dots++;
            }
            else if (!IsBase64UrlChar(c))
            {
                throw new JoseFormatException($"{noun} is not a compact JWS");
            }
        }

        if (dots != 2)
        {
            throw new JoseFormatException($"{noun} must have exactly three segments");
        }

        var first = token.IndexOf('.');
        var second = token.IndexOf('.', first + 1);
        return (..first, (first + 1)..second, (second + 1)..);
    }

    /// <summary>A header or payload segment: canonical base64url of UTF-8 JSON, one object, no member twice at any depth.</summary>
    public static JsonElement ReadObject(ReadOnlySpan<char> segment, string what)
    {
        if (segment.IsEmpty || !IsCanonicalBase64Url(segment))
        {
            throw new JoseFormatException($"{what} is not valid base64url");
        }

        var bytes = new byte[Base64Url.GetMaxDecodedLength(segment.Length)];
        if (!Base64Url.TryDecodeFromChars(segment, bytes, out var written))
        {
            throw new JoseFormatException($"{what} is not valid base64url");
        }

        var json = bytes.AsSpan(0, written);

        // The reader checks UTF-8 only lazily, when a string is read: a bad byte in a value
        // would surface later as an InvalidOperationException instead of this refusal.
        if (!System.Text.Unicode.Utf8.IsValid(json))
        {
            throw new JoseFormatException($"{what} is not valid UTF-8");
        }

        try
        {
            RejectDuplicateKeys(json, what);
            var reader = new Utf8JsonReader(json, ReaderOptions);
            var element = JsonElement.ParseValue(ref reader);
            if (element.ValueKind != JsonValueKind.Object)
            {
                throw new JoseFormatException($"{what} is not a JSON object");
            }

            return element;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // InvalidOperationException: a string that is not valid UTF-8.
            throw new JoseFormatException($"{what} is not valid JSON");
        }
    }

    /// <summary>
    /// Unpadded, and the unused low bits of the last character are zero, so each byte string
    /// has exactly one accepted spelling (no malleable re-encodings of a signed token).
    /// </summary>
    public static bool IsCanonicalBase64Url(ReadOnlySpan<char> segment)
    {
        var remainder = segment.Length % 4;
        if (remainder == 1)
        {
            return false;
        }

        if (remainder == 0)
        {
            return true;
        }

        var last = segment[^1];
        var value = last switch
        {
            >= 'A' and <= 'Z' => last - 'A',
            >= 'a' and <= 'z' => last - 'a' + 26,
            >= '0' and <= '9' => last - '0' + 52,
            '-' => 62,
            _ => 63,
        };
        var unusedBits = remainder == 2 ? 4 : 2;
        return (value & ((1 << unusedBits) - 1)) == 0;
    }

    private static bool IsBase64UrlChar(char c) =>
        c is >= 'A' and <= 'Z' or >= 'a' and <= 'z' or >= '0' and <= '9' or '-' or '_';

    /// <summary>
    /// Duplicate member names are refused at every depth: parsers disagree on which one wins,
    /// so a token could mean one thing to the signer's checks and another to ours.
    /// </summary>
    private static void RejectDuplicateKeys(ReadOnlySpan<byte> json, string what)
    {
        var reader = new Utf8JsonReader(json, ReaderOptions);
        var scopes = new Stack<HashSet<string>?>();
        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.StartObject:
                    scopes.Push(new HashSet<string>(StringComparer.Ordinal));
                    break;
                case JsonTokenType.StartArray:
                    scopes.Push(null);
                    break;
                case JsonTokenType.EndObject:
                case JsonTokenType.EndArray:
                    scopes.Pop();
                    break;
                case JsonTokenType.PropertyName:
                    // GetString unescapes, so "sub" and "\u0073ub" count as the same name.
                    if (!scopes.Peek()!.Add(reader.GetString()!))
                    {
                        throw new JoseFormatException($"{what} has a duplicate JSON member");
                    }

                    break;
            }
        }
    }
}
