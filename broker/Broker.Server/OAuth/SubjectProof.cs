using System.Buffers.Text;
using System.Text.Json;
using Broker.Core.Attestation;

namespace Broker.Server.OAuth;

/// <summary>
/// Turns a grant's proof into attestation evidence for the one attestor: the RFC 8693
/// <c>subject_token</c>, the RFC 7523 <c>assertion</c>, or, with neither, the mutual-TLS client
/// certificate (RFC 8705). Null evidence is refused by the issuer as ATTESTATION_MISSING and
/// audited like any other attestation failure.
/// </summary>
internal static class SubjectProof
{
    // Peeking is for routing only: larger tokens go to the JWT-SVID attestor, which refuses them by size.
    private const int MaxPeekLength = 16 * 1024;

    public static async Task<AttestationEvidence?> ReadAsync(string grantType, TokenForm form, HttpContext context)
    {
        switch (grantType)
        {
            case OAuthProtocol.TokenExchangeGrant:
                if (form["actor_token"] is not null || form["actor_token_type"] is not null)
                {
                    throw new OAuthRequestException(OAuthProtocol.InvalidRequest, OAuthReasons.ActorTokenUnsupported, $"actor_token is for delegation: send the delegating agent's Broker token as subject_token with subject_token_type {OAuthProtocol.AccessTokenType}.");
                }

                var type = form["subject_token_type"];
                if (form["subject_token"] is not { } subjectToken)
                {
                    if (type is not null)
                    {
                        throw new OAuthRequestException(OAuthProtocol.InvalidRequest, OAuthReasons.RequestMalformed, "subject_token_type was sent without subject_token.");
                    }

                    return await ClientCertificateAsync(context);
                }

                return type switch
                {
                    OAuthProtocol.JwtTokenType => FromJwt(subjectToken),
                    OAuthProtocol.IdTokenType => new OidcTokenEvidence(subjectToken),
                    null => throw new OAuthRequestException(OAuthProtocol.InvalidRequest, OAuthReasons.RequestMalformed, "subject_token_type is required with subject_token."),
                    _ => throw new OAuthRequestException(OAuthProtocol.InvalidRequest, OAuthReasons.TokenTypeUnsupported, $"subject_token_type must be {OAuthProtocol.JwtTokenType} (a JWT-SVID or OIDC workload token) or {OAuthProtocol.IdTokenType}."),
                };
            case OAuthProtocol.JwtBearerGrant:
                return form["assertion"] is { } assertion ? FromJwt(assertion) : null;
            default:
                throw new OAuthRequestException(OAuthProtocol.UnsupportedGrantType, OAuthReasons.GrantTypeUnsupported, $"grant_type must be {OAuthProtocol.TokenExchangeGrant} or {OAuthProtocol.JwtBearerGrant}.");
        }
    }

    /// <summary>
    /// Whether the request is a delegation: a token exchange whose <c>subject_token</c> is a
    /// Broker access token, exchanged for a sub-agent that proves itself as the actor.
    /// </summary>
    public static bool IsDelegation(string grantType, TokenForm form) =>
        grantType == OAuthProtocol.TokenExchangeGrant && form["subject_token_type"] == OAuthProtocol.AccessTokenType;

    /// <summary>
    /// The sub-agent's proof in a delegation (RFC 8693 <c>actor_token</c>): a JWT-SVID or OIDC
    /// workload token, or, with none, the mutual-TLS client certificate. Null is refused by the
    /// issuer as ATTESTATION_MISSING.
    /// </summary>
    public static async Task<AttestationEvidence?> ActorAsync(TokenForm form, HttpContext context)
    {
        var type = form["actor_token_type"];
        if (form["actor_token"] is not { } actorToken)
        {
            return type is null
                ? await ClientCertificateAsync(context)
                : throw new OAuthRequestException(OAuthProtocol.InvalidRequest, OAuthReasons.RequestMalformed, "actor_token_type was sent without actor_token.");
        }

        return type switch
        {
            OAuthProtocol.JwtTokenType => FromJwt(actorToken),
            OAuthProtocol.IdTokenType => new OidcTokenEvidence(actorToken),
            null => throw new OAuthRequestException(OAuthProtocol.InvalidRequest, OAuthReasons.RequestMalformed, "actor_token_type is required with actor_token."),
            _ => throw new OAuthRequestException(OAuthProtocol.InvalidRequest, OAuthReasons.TokenTypeUnsupported, $"actor_token_type must be {OAuthProtocol.JwtTokenType} (a JWT-SVID or OIDC workload token) or {OAuthProtocol.IdTokenType}."),
        };
    }

    /// <summary>The X.509-SVID of a mutual-TLS connection (RFC 8705); null over plain HTTP or without a certificate.</summary>
    internal static async Task<AttestationEvidence?> ClientCertificateAsync(HttpContext context) =>
        context.Request.IsHttps && await context.Connection.GetClientCertificateAsync(context.RequestAborted) is { } certificate
            ? new X509SvidEvidence(certificate)
            : null;

    /// <summary>A JWT whose <c>sub</c> is a SPIFFE ID is a JWT-SVID; any other is an OIDC workload token.</summary>
    internal static AttestationEvidence FromJwt(string token)
    {
        var parts = token.Split('.');
        if (token.Length > MaxPeekLength || parts.Length != 3)
        {
            return new JwtSvidEvidence(token);
        }

        try
        {
            using var payload = JsonDocument.Parse(Base64Url.DecodeFromChars(parts[1]));
            return payload.RootElement.ValueKind == JsonValueKind.Object
                && payload.RootElement.TryGetProperty("sub", out var sub)
                && sub.ValueKind == JsonValueKind.String
                && !sub.GetString()!.StartsWith("spiffe://", StringComparison.Ordinal)
                ? new OidcTokenEvidence(token)
                : new JwtSvidEvidence(token);
        }
        catch (Exception ex) when (ex is FormatException or JsonException)
        {
            return new JwtSvidEvidence(token);
        }
    }
}
