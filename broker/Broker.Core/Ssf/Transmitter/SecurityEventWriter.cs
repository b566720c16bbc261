using System.Security.Cryptography;
using Broker.Core.Signing;
using Broker.Revocation;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Core.Ssf.Transmitter;

/// <summary>
/// Signs Security Event Tokens (RFC 8417, <c>typ: secevent+jwt</c>) with the key that signs
/// access tokens at that moment, through the same handler: receivers verify them with the JWKS
/// they already fetch, and there is one signing path. No <c>exp</c>: a SET states a fact; the
/// receiver's replay window is its own (RFC 8417 section 2.2).
/// </summary>
public sealed class SecurityEventWriter(SigningKeyRing keys, string issuer, TimeProvider time)
{
    public const string TokenType = "secevent+jwt";

    private readonly JsonWebTokenHandler _handler = new() { SetDefaultTimesOnTokenCreation = false };

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

    public static string NewJti()
    {
        Span<byte> id = stackalloc byte[16];
        RandomNumberGenerator.Fill(id);
        return Base64UrlEncoder.Encode(id.ToArray());
    }

    private string Sign(string audience, string jti, string txn, Dictionary<string, object> subject, string eventType, Dictionary<string, object> body)
    {
        var now = time.GetUtcNow();
        var descriptor = new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            IssuedAt = now.UtcDateTime,
            TokenType = TokenType,
            Claims = new Dictionary<string, object>(StringComparer.Ordinal)
            {
                [JwtRegisteredClaimNames.Jti] = jti,
                ["txn"] = txn,
                ["sub_id"] = subject,
                ["events"] = new Dictionary<string, object> { [eventType] = body },
            },
            SigningCredentials = keys.Active(now).Credentials,
        };
        return _handler.CreateToken(descriptor);
    }
}
