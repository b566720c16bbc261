namespace Broker.Core.Attestation;

/// <summary>
/// Validates a proof of workload identity offline against the trust sources of the current
/// policy. Refusals are <see cref="Errors.BrokerException"/> with an <c>ATTESTATION_*</c>
/// reason (or <c>TRUST_BUNDLE_UNAVAILABLE</c> when a bundle cannot be had).
/// </summary>
public interface IWorkloadAttestor
{
    ValueTask<WorkloadIdentity> AttestAsync(AttestationEvidence evidence, CancellationToken cancellationToken);

    /// <summary>
    /// Whether <paramref name="evidence"/> passed full validation before and would be served
    /// without checking a signature again. A caller whose refusal budget is spent is answered
    /// <c>RATE_LIMITED</c> before its proof is checked unless this is true, so a flood of fresh
    /// proofs from one address cannot spend the node's CPU on signature checks.
    /// </summary>
    bool HasValidated(AttestationEvidence evidence) => false;
}
