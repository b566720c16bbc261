namespace Broker.Core.Ssf;

/// <summary>A verified Security Event Token from the configured transmitter, reduced to what Broker acts on.</summary>
/// <param name="Issuer">The transmitter (<c>iss</c>).</param>
/// <param name="JwtId">The SET's <c>jti</c>.</param>
/// <param name="SignalId"><c>ssf:</c> + jti (or + its SHA-256 when the jti is no valid signal id).</param>
/// <param name="EventType">One of <see cref="SecurityEventTypes.Accepted"/>.</param>
/// <param name="Agent">The subject: the agent's workload id.</param>
/// <param name="Level">The risk level to record (lower case); null for <c>session-revoked</c>, which revokes instead.</param>
/// <param name="Evidence">The CAEP <c>risk_reason</c>, when usable as an evidence reference.</param>
/// <param name="IssuedAt">The SET's <c>iat</c>.</param>
/// <param name="Observed">The event's <c>event_timestamp</c>, else <paramref name="IssuedAt"/>.</param>
public sealed record SecurityEvent(
    string Issuer,
    string JwtId,
    string SignalId,
    string EventType,
    string Agent,
    string? Level,
    string? Evidence,
    DateTimeOffset IssuedAt,
    DateTimeOffset Observed);

/// <summary>The CAEP and RISC event types Broker receives and emits.</summary>
public static class SecurityEventTypes
{
    public const string RiskLevelChange = "https://schemas.openid.net/secevent/caep/event-type/risk-level-change";
    public const string SessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
    public const string AccountDisabled = "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
    public const string CredentialCompromise = "https://schemas.openid.net/secevent/risc/event-type/credential-compromise";

    public static IReadOnlyList<string> Accepted { get; } = [RiskLevelChange, SessionRevoked, AccountDisabled, CredentialCompromise];
}
