namespace Broker.Core.Attestation;

/// <summary>
/// Validates a proof of workload identity offline against the trust sources of the current
/// policy. Refusals are <see cref="Errors.BrokerException"/> with an <c>ATTESTATION_*</c>
/// reason (or <c>TRUST_BUNDLE_UNAVAILABLE</c> when a bundle cannot be had).
/// </summary>
public interface IWorkloadAttestor
{
    ValueTask<WorkloadIdentity> AttestAsync(AttestationEvidence evidence, CancellationToken cancellationToken);
}
