using Broker.Core.Errors;

namespace Broker.Core.Secrets;

/// <summary>Refusals of the downstream-credential path (docs/errors.md, docs/secrets.md).</summary>
public static class SecretErrors
{
    /// <summary>The request names no engine or role, or a malformed one.</summary>
    public const string SecretInvalid = "SECRET_INVALID";

    /// <summary>Policy gives this workload no such credential in this phase.</summary>
    public const string SecretNotAllowed = "SECRET_NOT_ALLOWED";

    /// <summary>The role policy names does not exist on the engine: a policy error, refused until fixed.</summary>
    public const string SecretRoleMissing = "SECRET_ROLE_MISSING";

    /// <summary>The engine cannot be reached or refused the broker's admin login; nothing was issued.</summary>
    public const string SecretEngineUnavailable = "SECRET_ENGINE_UNAVAILABLE";

    /// <summary>Lease state cannot be read or written; nothing was issued.</summary>
    public const string LeaseStateUnavailable = "LEASE_STATE_UNAVAILABLE";

    public static BrokerException EngineUnavailable(string engine, string why, Exception? inner = null) =>
        BrokerErrors.Unavailable(SecretEngineUnavailable, $"Secret engine '{engine}' is unavailable: {why}. Nothing was issued.", inner);
}
