namespace Broker.Core.Secrets;

/// <summary>
/// Live leases in shared state (Redis in production, memory in --dev). A lease is written before
/// its credential exists and removed only after the credential is gone, so a crashed node leaves
/// a record any other node can finish. One contract suite runs against every backend
/// (tests/Broker.Server.Tests/Secrets/LeaseStoreContract.cs).
/// </summary>
public interface ILeaseStore
{
    /// <summary>Records a lease durably (replicas confirm where configured) before its credential is created.</summary>
    Task RecordAsync(SecretLease lease, CancellationToken cancellationToken);

    Task<SecretLease?> GetAsync(string leaseId, CancellationToken cancellationToken);

    /// <summary>Live leases (recorded, not yet completed), soonest to expire first.</summary>
    Task<IReadOnlyList<SecretLease>> ListAsync(int limit, CancellationToken cancellationToken);

    /// <summary>
    /// Takes the right to end a lease: true for exactly one caller until <paramref name="hold"/>
    /// passes (then a crashed claimant's lease can be claimed again). False when another node holds
    /// it or the lease is gone.
    /// </summary>
    Task<bool> TryClaimAsync(string leaseId, string node, TimeSpan hold, CancellationToken cancellationToken);

    /// <summary>
    /// True when the lease is recorded and nobody has claimed it: the issuing node checks this
    /// after creating the credential, so a lease ended meanwhile is not handed out.
    /// </summary>
    Task<bool> IsUnclaimedAsync(string leaseId, CancellationToken cancellationToken);

    /// <summary>Removes an ended lease; only the node holding the claim may (false otherwise).</summary>
    Task<bool> CompleteAsync(string leaseId, string node, CancellationToken cancellationToken);

    /// <summary>Gives a claim back after a failed attempt, so the next sweep retries at once.</summary>
    Task ReleaseAsync(string leaseId, string node, CancellationToken cancellationToken);
}
