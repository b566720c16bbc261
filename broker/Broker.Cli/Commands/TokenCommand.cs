using System.Buffers.Text;
using System.CommandLine;
using System.Text.Json;
using Broker.Cli.Internal;

namespace Broker.Cli.Commands;

/// <summary><c>brokerctl token ...</c>: look inside tokens.</summary>
internal static class TokenCommand
{
    /// <summary>Larger input is refused: Broker tokens and SVIDs are a few kilobytes.</summary>
    public const int MaxTokenLength = 64 * 1024;

    public const string NotValidatedWarning =
        "NOT VALIDATED: decoded only. The signature, issuer, audience, lifetime and revocation were not checked; do not trust these values.";

    public static Command Create(CliContext context, HelpTexts help)
    {
        var token = new Command("token", "Inspect tokens: Broker access tokens and JWT-SVIDs.");
        token.Subcommands.Add(CreateDecode(context, help));
        help.Add(token, """
            Examples:
              brokerctl token decode "$TOKEN"
            """);
        return token;
    }

    private static Command CreateDecode(CliContext context, HelpTexts help)
    {
        var input = new Argument<string>("TOKEN")
        {
            Description = "A compact JWT (a leading 'Bearer ' is ignored), or '-' to read it from stdin.",
        };
        var command = new Command(
            "decode",
            "Print a JWT's header and claims as pretty JSON WITHOUT validating it: the signature, issuer, audience, lifetime and revocation "
            + "are NOT checked. For people inspecting what they got; resource servers must validate against the broker's JWKS.");
        command.Arguments.Add(input);
        help.Add(command, """
            Examples:
              brokerctl token decode "$TOKEN"
              brokerctl issue ... --token-only | brokerctl token decode -
              brokerctl token decode - < token.txt | jq .claims.scope

            stdout is one JSON object {"header": ..., "claims": ...}; the not-validated warning and
            readable times go to stderr, so stdout stays valid JSON for jq.
            """);

        command.SetAction(BrokerCtl.Guarded(context, async (parseResult, cancellationToken) =>
        {
            var text = parseResult.GetValue(input)!;
            if (text == "-")
            {
                text = await ReadStdinAsync(context.In, cancellationToken);
            }

            var (header, claims) = Decode(text);
            context.Error.WriteLine(NotValidatedWarning);
            WriteTimes(context.Error, claims, context.Time.GetUtcNow());
            context.Out.WriteLine(Render(header, claims));
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>Splits and base64url-decodes a compact JWS. Error messages never echo the input.</summary>
    internal static (JsonElement Header, JsonElement Claims) Decode(string text)
    {
        var token = text.Trim();
        if (token.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            token = token["Bearer ".Length..].Trim();
        }

        if (token.Length == 0)
        {
            throw CliException.Usage("no token given.");
        }

        if (token.Length > MaxTokenLength)
        {
            throw CliException.Usage($"the token is longer than {MaxTokenLength} characters.");
        }

        var parts = token.Split('.');
        if (parts.Length == 5)
        {
            throw CliException.Usage("this is an encrypted token (JWE); its claims cannot be read without the recipient's key.");
        }

        if (parts.Length != 3)
        {
            throw CliException.Usage($"not a compact JWT: expected 3 dot-separated parts, found {parts.Length}.");
        }

        return (ParsePart(parts[0], "header"), ParsePart(parts[1], "claims"));
    }

    internal static string Render(JsonElement header, JsonElement claims)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            writer.WritePropertyName("header");
            header.WriteTo(writer);
            writer.WritePropertyName("claims");
            claims.WriteTo(writer);
            writer.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static JsonElement ParsePart(string part, string name)
    {
        byte[] bytes;
        try
        {
            bytes = Base64Url.DecodeFromChars(part);
        }
        catch (FormatException)
        {
            throw CliException.Usage($"the token's {name} is not base64url.");
        }

        try
        {
            using var document = JsonDocument.Parse(bytes);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw CliException.Usage($"the token's {name} is not a JSON object.");
            }

            return document.RootElement.Clone();
        }
        catch (JsonException)
        {
            throw CliException.Usage($"the token's {name} is not JSON.");
        }
    }

    // Readable iat/nbf/exp for people; stderr, so stdout stays machine-readable.
    private static void WriteTimes(TextWriter error, JsonElement claims, DateTimeOffset now)
    {
        foreach (var name in new[] { "iat", "nbf", "exp" })
        {
            if (claims.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var seconds)
                && seconds is >= 0 and <= 253402300799)
            {
                var at = DateTimeOffset.FromUnixTimeSeconds(seconds);
                var relative = at >= now ? $"in {Durations.Format(at - now)}" : $"{Durations.Format(now - at)} ago";
                error.WriteLine($"{name}: {at:yyyy-MM-ddTHH:mm:ssZ} ({relative})");
            }
        }
    }

    internal static async Task<string> ReadStdinAsync(TextReader reader, CancellationToken cancellationToken)
    {
        var buffer = new char[MaxTokenLength + 1];
        var total = 0;
        int read;
        while (total < buffer.Length && (read = await reader.ReadAsync(buffer.AsMemory(total), cancellationToken)) > 0)
        {
            total += read;
        }

        if (total > MaxTokenLength)
        {
            throw CliException.Usage($"stdin holds more than {MaxTokenLength} characters; that is not a token.");
        }

        return new string(buffer, 0, total);
    }
}
