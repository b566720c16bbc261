using Broker.Core.Attestation;
using Broker.Core.Diagnostics;
using Broker.Core.Errors;
using Broker.Core.State;
using Broker.Jose;

namespace Broker.Core.Issuance;

/// <summary>A DPoP proof sent with a token request, and the request it must name.</summary>
/// <param name="Proof">The <c>DPoP</c> header value.</param>
/// <param name="Method">The HTTP method the proof must name (<c>htm</c>).</param>
/// <param name="Target">The token endpoint the proof must name (<c>htu</c>): the issuer's, as the metadata publishes it.</param>
public sealed record DpopPresentation(string Proof, string Method, Uri Target);

/// <summary>DPoP at the token endpoint (<c>Broker:OAuth:Dpop</c>).</summary>
public sealed class DpopOptions
{
    /// <summary>When true, every proof must carry a current server nonce; without one the answer is <c>use_dpop_nonce</c>.</summary>
    public bool RequireNonce { get; set; }
}

/// <summary>
/// Proves that the caller holds the key a token is to be bound to: the stateless checks of
/// <see cref="DpopProofReader"/>, the server nonce, then the proof's <c>jti</c> claimed once in
/// the replay store every node shares (Redis in production), so a proof replayed to any node of
/// the cluster is refused.
/// </summary>
public sealed class DpopVerifier(DpopProofReader reader, DpopNonces nonces, DpopOptions options, ICredentialStore store, BrokerMetrics metrics, TimeProvider time, TimeSpan clockSkew)
{
    public DpopNonces Nonces => nonces;

    public async Task<DpopProof> VerifyAsync(DpopPresentation presentation, CancellationToken cancellationToken)
    {
        DpopProof proof;
        try
        {
            proof = await reader.ReadAsync(presentation.Proof, presentation.Method, presentation.Target, time.GetUtcNow());
        }
        catch (DpopProofException e)
        {
            throw BrokerErrors.InvalidArgument(e.Reason, e.Message);
        }

        if (proof.Nonce is { } nonce ? !nonces.IsCurrent(nonce) : options.RequireNonce)
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.DpopNonceRequired, proof.Nonce is null
                ? "This broker requires a server nonce in DPoP proofs: use the DPoP-Nonce header of this answer."
                : "The DPoP proof's nonce is not current: use the DPoP-Nonce header of this answer.");
        }

        // Kept past the last moment any node (whose clock may differ by the skew) accepts the proof.
        var claimed = await SharedState.CallAsync(metrics, "dpop.claim_proof", () => store.ClaimProofAsync(ProofKeys.Dpop(proof.Jkt, proof.JwtId), proof.AcceptedUntil + clockSkew, cancellationToken));
        if (!claimed)
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.DpopProofReplayed, "This DPoP proof was already used; make a new proof for each request.");
        }

        return proof;
    }
}
