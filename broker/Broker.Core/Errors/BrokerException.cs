namespace Broker.Core.Errors;

/// <summary>
/// A refusal with a stable reason code (docs/errors.md). The message is safe to return to
/// the caller: it never carries key material or which check "nearly" passed.
/// </summary>
public sealed class BrokerException : Exception
{
    public BrokerException(FailureKind kind, string reason, string message, IReadOnlyDictionary<string, string>? metadata = null, Exception? inner = null)
        : base(message, inner)
    {
        Kind = kind;
        Reason = reason;
        Metadata = metadata ?? new Dictionary<string, string>();
    }

    public FailureKind Kind { get; }

    /// <summary>Stable, upper-snake-case reason code, e.g. <c>ATTESTATION_EXPIRED</c>.</summary>
    public string Reason { get; }

    /// <summary>Extra facts the caller can act on (e.g. the scopes refused).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }
}
