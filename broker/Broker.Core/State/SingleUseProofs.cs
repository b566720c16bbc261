using Broker.Core.Attestation;
using Broker.Core.Diagnostics;
using Broker.Core.Errors;

namespace Broker.Core.State;

/// <summary>
/// Consumes a single-use proof's <c>jti</c> before any attested call acts on it (issuance,
/// EndTask, WaitForApproval, ReportSignal and every door built on them), so a replayed proof
/// is refused whatever it is replayed to.
/// </summary>
internal static class SingleUseProofs
{
    // A proof is accepted until exp plus the attestation clock skew, which configuration may set
    // up to 5 minutes: the claim outlives the longest acceptance.
    private static readonly TimeSpan AcceptanceMargin = TimeSpan.FromMinutes(5);

    /// <summary>Claims the proof of <paramref name="identity"/> if its trust source makes proofs single-use; a replay throws <c>UNAUTHENTICATED / ATTESTATION_REPLAYED</c>.</summary>
    public static async Task ClaimAsync(ICredentialStore store, BrokerMetrics metrics, WorkloadIdentity identity, CancellationToken cancellationToken)
    {
        if (identity.ProofId is not { } proofId)
        {
            return;
        }

        // ProofId is already typed by kind and trust source (ProofKeys).
        var claimed = await SharedState.CallAsync(metrics, "credential.claim_proof", () => store.ClaimProofAsync(proofId, identity.ProofExpiresAt + AcceptanceMargin, cancellationToken));
        if (!claimed)
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationReplayed, "This single-use proof was already used.");
        }
    }
}
