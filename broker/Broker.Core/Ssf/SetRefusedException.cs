namespace Broker.Core.Ssf;

/// <summary>
/// A Security Event Token refused, with the RFC 8935 section 2.3 error code the transmitter is
/// answered with (<c>invalid_request</c>, <c>invalid_key</c>, <c>invalid_issuer</c>,
/// <c>invalid_audience</c>, <c>access_denied</c>). The only exception the SET reader throws for
/// anything a transmitter (or an attacker) sent.
/// </summary>
public sealed class SetRefusedException(string err, string description, string? issuer = null, string? signalId = null) : Exception(description)
{
    public string Err { get; } = err;

    public string Description { get; } = description;

    /// <summary>The transmitter, once the SET's <c>iss</c> was found to be the configured one.</summary>
    public string? Issuer { get; } = issuer;

    /// <summary>The signal id, once the signature verified and the <c>jti</c> was read.</summary>
    public string? SignalId { get; } = signalId;
}
