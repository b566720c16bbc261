using System.Buffers;
using System.Text.Json;
using Broker.Core.Signing;
using Broker.Revocation;

namespace Broker.Core.Ssf.Transmitter;

/// <summary>
/// Signs Security Event Tokens (RFC 8417, <c>typ: secevent+jwt</c>) with the key that signs
/// access tokens at that moment, through the same compact JWS signer: receivers verify them with
/// the JWKS they already fetch, and there is one signing path. No <c>exp</c>: a SET states a fact; the
/// receiver's replay window is its own (RFC 8417 section 2.2).
/// </summary>
public sealed class SecurityEventWriter(SigningKeyRing keys, string issuer, TimeProvider time)
{
    public const string TokenType = "secevent+jwt";

    private readonly ActiveKeySigner _signer = new(keys, TokenType);

    public string Issuer => issuer;

    /// <summary>The <c>session-revoked</c> SET of <paramref name="entry"/> for <paramref name="stream"/>; <c>txn</c> is the log id, the same on every stream.</summary>
    public string Revocation(SsfStream stream, RevocationEntry entry, string jti) =>
        Sign(stream.Audience, jti, entry.Id, RevocationEvent.Subject(entry, issuer), SsfEventTypes.SessionRevoked, RevocationEvent.Body(entry));

    /// <summary>The verification SET (SSF 1.0 section 8.1.4): the stream as an opaque subject, and the receiver's <c>state</c> if it gave one.</summary>
    public string Verification(SsfStream stream, string jti, string? state)
    {
        var body = new Dictionary<string, object>(StringComparer.Ordinal);
        if (state is not null)
        {
            body["state"] = state;
        }

        return Sign(stream.Audience, jti, jti, new Dictionary<string, object> { ["format"] = "opaque", ["id"] = stream.Id }, SsfEventTypes.Verification, body);
    }

    /// <summary>128 random bits, base64url: the same ids access tokens carry.</summary>
    public static string NewJti() => Issuance.TokenMinter.NewTokenId();

    private string Sign(string audience, string jti, string txn, Dictionary<string, object> subject, string eventType, Dictionary<string, object> body)
    {
        var now = time.GetUtcNow();
        var payload = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(payload, CompactJwsSigner.JsonOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("iss", issuer);
            writer.WriteString("aud", audience);
            writer.WriteNumber("iat", now.ToUnixTimeSeconds());
            writer.WriteString("jti", jti);
            writer.WriteString("txn", txn);
            writer.WritePropertyName("sub_id");
            JsonSerializer.Serialize(writer, subject);
            writer.WriteStartObject("events");
            writer.WritePropertyName(eventType);
            JsonSerializer.Serialize(writer, body);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        return _signer.Sign(now, payload.WrittenSpan);
    }
}
