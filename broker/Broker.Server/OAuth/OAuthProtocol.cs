namespace Broker.Server.OAuth;

/// <summary>The URIs, parameter names and error codes of the OAuth specifications Broker serves.</summary>
internal static class OAuthProtocol
{
    public const string TokenPath = "/oauth2/token";
    public const string IntrospectionPath = "/oauth2/introspect";
    public const string RevocationPath = "/oauth2/revoke";
    public const string MetadataPath = "/.well-known/oauth-authorization-server";

    public const string TokenExchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange";
    public const string JwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer";

    public const string JwtTokenType = "urn:ietf:params:oauth:token-type:jwt";
    public const string IdTokenType = "urn:ietf:params:oauth:token-type:id_token";
    public const string AccessTokenType = "urn:ietf:params:oauth:token-type:access_token";

    /// <summary>The RFC 9396 authorization details type that names Broker's task, phase and justification.</summary>
    public const string AgentTaskType = "agent_task";

    // RFC 6749 section 5.2, RFC 7009, RFC 8707, RFC 8628 / CIBA, RFC 9396.
    public const string InvalidRequest = "invalid_request";
    public const string InvalidClient = "invalid_client";
    public const string UnsupportedTokenType = "unsupported_token_type";
    public const string InvalidGrant = "invalid_grant";
    public const string InvalidScope = "invalid_scope";
    public const string InvalidTarget = "invalid_target";
    public const string UnauthorizedClient = "unauthorized_client";
    public const string UnsupportedGrantType = "unsupported_grant_type";
    public const string AccessDenied = "access_denied";
    public const string TemporarilyUnavailable = "temporarily_unavailable";
    public const string ServerError = "server_error";
    public const string AuthorizationPending = "authorization_pending";
    public const string SlowDown = "slow_down";
    public const string ExpiredToken = "expired_token";
    public const string InvalidAuthorizationDetails = "invalid_authorization_details";

    // RFC 9449 sections 7.1 and 8.
    public const string InvalidDpopProof = "invalid_dpop_proof";
    public const string UseDpopNonce = "use_dpop_nonce";
    public const string DpopHeader = "DPoP";
    public const string DpopNonceHeader = "DPoP-Nonce";
}
