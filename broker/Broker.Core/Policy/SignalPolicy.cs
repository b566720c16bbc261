using Broker.Core.Risk;

namespace Broker.Core.Policy;

/// <summary>
/// The policy's <c>signals:</c> section: who may report runtime risk and what a critical report
/// does. Without it no risk source is wired and the risk gate does not apply (docs/risk.md).
/// </summary>
/// <param name="Sources">Workload id patterns of the runtime-protection services allowed to report.</param>
/// <param name="Containment">The level that revokes the subject's live credentials and freezes its issuance; null turns containment off.</param>
/// <param name="MaxValidity">The longest a signal may stay current (valid_until - observed_at).</param>
public sealed record SignalPolicy(IReadOnlyList<WorkloadPattern> Sources, RiskLevel? Containment, TimeSpan MaxValidity)
{
    public static readonly TimeSpan DefaultMaxValidity = TimeSpan.FromHours(1);

    /// <summary>The Shared Signals transmitter whose Security Event Tokens are accepted (signals.ssf); null: none.</summary>
    public SsfTransmitterPolicy? Ssf { get; init; }

    public bool IsSource(string workloadId) => Sources.Any(s => s.IsMatch(workloadId));
}

/// <summary>A Shared Signals Framework transmitter (RFC 8935 push of RFC 8417 Security Event Tokens).</summary>
/// <param name="Issuer">Exact <c>iss</c> of its SETs.</param>
/// <param name="JwksFile">Absolute path of its JWKS file; or</param>
/// <param name="JwksUri">the URL serving its JWKS.</param>
/// <param name="Audience">The <c>aud</c> its SETs must name; null: the broker's audience.</param>
/// <param name="MaxAge">How old (by <c>iat</c>) a SET may be when it arrives.</param>
public sealed record SsfTransmitterPolicy(string Issuer, string? JwksFile, Uri? JwksUri, string? Audience, TimeSpan MaxAge)
{
    public static readonly TimeSpan DefaultMaxAge = TimeSpan.FromMinutes(5);
}
