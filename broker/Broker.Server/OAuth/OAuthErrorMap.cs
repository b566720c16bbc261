using Broker.Core.Errors;

namespace Broker.Server.OAuth;

/// <summary>
/// The one place domain refusals become RFC 6749 errors (the OAuth twin of
/// <c>BrokerErrorInterceptor</c>): the error code from the reason where the reason says more
/// than its kind, else from the kind. The Broker reason itself always travels along.
/// </summary>
internal static class OAuthErrorMap
{
    private static readonly Dictionary<string, string> ByReason = new(StringComparer.Ordinal)
    {
        [BrokerErrors.AttestationMissing] = OAuthProtocol.InvalidRequest,
        [BrokerErrors.AttestationTooLarge] = OAuthProtocol.InvalidRequest,
        [BrokerErrors.ScopesInvalid] = OAuthProtocol.InvalidScope,
        [BrokerErrors.ScopeNotAllowed] = OAuthProtocol.InvalidScope,
        [BrokerErrors.AudienceInvalid] = OAuthProtocol.InvalidTarget,
        [BrokerErrors.AudienceNotAllowed] = OAuthProtocol.InvalidTarget,
        [BrokerErrors.AgentNotAllowed] = OAuthProtocol.UnauthorizedClient,
        [BrokerErrors.PhaseNotAllowed] = OAuthProtocol.UnauthorizedClient,
        [BrokerErrors.TtlExceedsPolicy] = OAuthProtocol.InvalidRequest,
        [BrokerErrors.TaskNotOwned] = OAuthProtocol.InvalidGrant,
        [BrokerErrors.ApprovalDenied] = OAuthProtocol.AccessDenied,
        [BrokerErrors.ApprovalExpired] = OAuthProtocol.ExpiredToken,
        [BrokerErrors.ApprovalIdInvalid] = OAuthProtocol.InvalidGrant,
        [BrokerErrors.ApprovalNotYours] = OAuthProtocol.InvalidGrant,
        [BrokerErrors.ResourceServerTokenMissing] = OAuthProtocol.InvalidClient,
        [BrokerErrors.ResourceServerTokenInvalid] = OAuthProtocol.InvalidClient,
        [BrokerErrors.ResourceServerRoleMissing] = OAuthProtocol.AccessDenied,
        [BrokerErrors.TokenNotHeld] = OAuthProtocol.UnauthorizedClient,
        [BrokerErrors.DpopProofInvalid] = OAuthProtocol.InvalidDpopProof,
        [BrokerErrors.DpopProofTargetMismatch] = OAuthProtocol.InvalidDpopProof,
        [BrokerErrors.DpopProofStale] = OAuthProtocol.InvalidDpopProof,
        [BrokerErrors.DpopProofReplayed] = OAuthProtocol.InvalidDpopProof,
        [BrokerErrors.DpopProofMissing] = OAuthProtocol.InvalidDpopProof,
        [BrokerErrors.DpopNonceRequired] = OAuthProtocol.UseDpopNonce,
        [BrokerErrors.RateLimited] = OAuthProtocol.SlowDown,

        // Delegation (RFC 8693 section 2.2.2): the subject token is the grant; narrowing it is the scope and target.
        [BrokerErrors.SubjectTokenInvalid] = OAuthProtocol.InvalidGrant,
        [BrokerErrors.SubjectTokenExpired] = OAuthProtocol.InvalidGrant,
        [BrokerErrors.SubjectTokenRevoked] = OAuthProtocol.InvalidGrant,
        [BrokerErrors.SubjectTokenBound] = OAuthProtocol.InvalidGrant,
        [BrokerErrors.DelegationNotAllowed] = OAuthProtocol.InvalidGrant,
        [BrokerErrors.DelegationDepthExceeded] = OAuthProtocol.InvalidGrant,
        [BrokerErrors.PhaseEscalation] = OAuthProtocol.InvalidGrant,
        [BrokerErrors.DelegationApprovalUnsupported] = OAuthProtocol.InvalidScope,
        [BrokerErrors.ScopeNotSubset] = OAuthProtocol.InvalidScope,
        [BrokerErrors.DelegationAudienceMismatch] = OAuthProtocol.InvalidTarget,
    };

    /// <summary>RFC 6749 error code and HTTP status for a domain refusal.</summary>
    public static (string Error, int Status) Map(BrokerException exception)
    {
        var error = ByReason.TryGetValue(exception.Reason, out var mapped) ? mapped : exception.Kind switch
        {
            FailureKind.InvalidArgument => OAuthProtocol.InvalidRequest,
            FailureKind.Unauthenticated => OAuthProtocol.InvalidGrant,
            FailureKind.PermissionDenied => OAuthProtocol.AccessDenied,
            FailureKind.FailedPrecondition => OAuthProtocol.InvalidGrant,
            FailureKind.NotFound => OAuthProtocol.InvalidGrant,
            FailureKind.ResourceExhausted => OAuthProtocol.TemporarilyUnavailable,
            FailureKind.Unavailable => OAuthProtocol.TemporarilyUnavailable,
            _ => OAuthProtocol.ServerError,
        };
        // Past the caller's refusal budget: 429 (RFC 6585) with Retry-After, not slow_down's usual 400.
        return (error, exception.Reason == BrokerErrors.RateLimited ? StatusCodes.Status429TooManyRequests : StatusOf(error));
    }

    public static int StatusOf(string error) => error switch
    {
        // RFC 6749 section 5.2: a client that failed to authenticate hears 401.
        OAuthProtocol.InvalidClient => StatusCodes.Status401Unauthorized,
        OAuthProtocol.TemporarilyUnavailable => StatusCodes.Status503ServiceUnavailable,
        OAuthProtocol.ServerError => StatusCodes.Status500InternalServerError,
        _ => StatusCodes.Status400BadRequest,
    };
}
