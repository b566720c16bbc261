using Broker.V1;

namespace Broker.Client;

/// <summary>
/// Supplies the proof of workload identity sent with each call. It is asked once per call,
/// so implementations can hand out a freshly rotated credential every time.
/// </summary>
public interface IAttestationSource
{
    /// <summary>Returns the proof to attach to the next call.</summary>
    ValueTask<AttestationProof> GetProofAsync(CancellationToken cancellationToken = default);
}
