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

    public bool IsSource(string workloadId) => Sources.Any(s => s.IsMatch(workloadId));
}
