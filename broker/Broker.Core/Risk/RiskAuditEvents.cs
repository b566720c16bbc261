namespace Broker.Core.Risk;

/// <summary>
/// Identity consequences of runtime risk, in the audit log's 6xxx band. Refusals for risk are
/// <c>credential.refused</c> (2001) with a RISK_* reason, and revocations for risk are
/// <c>credential.revoked</c> (4000) by actor <see cref="RiskService.Actor"/>; these cover the rest.
/// None carries evidence: a signal appears only by its id.
/// </summary>
public static class RiskAuditEvents
{
    /// <summary>A signal was refused (source not allowed, self-report, malformed, id reused).</summary>
    public static readonly (int Id, string Name) SignalRefused = (6002, "risk.signal_refused");

    /// <summary>Issuance frozen for an agent or task by a signal at the containment level.</summary>
    public static readonly (int Id, string Name) Frozen = (6003, "risk.frozen");

    /// <summary>A freeze lifted by a later signal below the containment level.</summary>
    public static readonly (int Id, string Name) Unfrozen = (6004, "risk.unfrozen");

    /// <summary>An operator cleared an agent's or task's risk and freeze.</summary>
    public static readonly (int Id, string Name) Cleared = (6005, "risk.cleared");
}
