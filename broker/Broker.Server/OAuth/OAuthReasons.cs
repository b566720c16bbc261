namespace Broker.Server.OAuth;

/// <summary>
/// Reason codes of refusals the OAuth door makes itself, before a request reaches the domain
/// (docs/errors.md, "OAuth front door"). Everything else carries the domain's reason.
/// </summary>
internal static class OAuthReasons
{
    public const string TlsRequired = "OAUTH_TLS_REQUIRED";
    public const string RequestMalformed = "OAUTH_REQUEST_MALFORMED";
    public const string GrantTypeUnsupported = "OAUTH_GRANT_TYPE_UNSUPPORTED";
    public const string TokenTypeUnsupported = "OAUTH_TOKEN_TYPE_UNSUPPORTED";
    public const string TargetInvalid = "OAUTH_TARGET_INVALID";
    public const string AuthorizationDetailsInvalid = "OAUTH_AUTHORIZATION_DETAILS_INVALID";
    public const string ActorTokenUnsupported = "OAUTH_ACTOR_TOKEN_UNSUPPORTED";
    public const string ApprovalPending = "APPROVAL_PENDING";
    public const string PolledTooFast = "APPROVAL_POLLED_TOO_FAST";
}

/// <summary>A refusal made by the OAuth door itself, with its RFC 6749 error code.</summary>
internal sealed class OAuthRequestException(string error, string reason, string message) : Exception(message)
{
    public string Error { get; } = error;

    public string Reason { get; } = reason;
}
