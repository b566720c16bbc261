using Broker.Core;
using Broker.Core.Secrets;
using Microsoft.Extensions.Time.Testing;

namespace Broker.Server.Tests.Secrets;

/// <summary>
/// The behaviour every <see cref="ILeaseStore"/> backend must have: what a lease's record keeps,
/// and the claim that makes ending a lease exactly-once across nodes yet lets a crashed
/// claimant's lease be ended by another node.
/// </summary>
public abstract class LeaseStoreContract
{
    protected FakeTimeProvider Time { get; } = new(DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));

    protected abstract ILeaseStore CreateStore();

    /// <summary>Returns once a claim taken with <paramref name="hold"/> has lapsed in <paramref name="store"/>.</summary>
    protected abstract Task LetClaimLapseAsync(ILeaseStore store, string leaseId, TimeSpan hold);

    /// <summary>The hold the lapse case uses: short for a backend that runs on real time.</summary>
    protected virtual TimeSpan ShortHold => TimeSpan.FromSeconds(30);

    private SecretLease Lease(TimeSpan? lifetime = null, string task = "task-1")
    {
        var now = Time.GetUtcNow();
        return new SecretLease(SecretLease.NewId(), "orders-db", "orders_reader", SecretLease.NewLogin(), task, "spiffe://example.org/agents/a", TaskPhase.Planning, now, now + (lifetime ?? TimeSpan.FromMinutes(5)), "node-a");
    }

    [Fact]
    public async Task A_recorded_lease_reads_back_with_every_field()
    {
        var store = CreateStore();
        var lease = Lease() with { Phase = TaskPhase.Execution, Role = "orders_writer" };

        await store.RecordAsync(lease, default);

        Assert.Equal(lease, await store.GetAsync(lease.LeaseId, default));
        Assert.Null(await store.GetAsync(SecretLease.NewId(), default));
    }

    [Fact]
    public async Task Live_leases_are_listed_soonest_to_expire_first_up_to_the_limit()
    {
        var store = CreateStore();
        var late = Lease(TimeSpan.FromMinutes(9));
        var soon = Lease(TimeSpan.FromMinutes(1));
        var middle = Lease(TimeSpan.FromMinutes(4));
        foreach (var lease in new[] { late, soon, middle })
        {
            await store.RecordAsync(lease, default);
        }

        Assert.Equal([soon.LeaseId, middle.LeaseId, late.LeaseId], (await store.ListAsync(10, default)).Select(l => l.LeaseId));
        Assert.Equal([soon.LeaseId, middle.LeaseId], (await store.ListAsync(2, default)).Select(l => l.LeaseId));
    }

    [Fact]
    public async Task Exactly_one_of_many_racing_nodes_claims_a_lease()
    {
        var store = CreateStore();
        var lease = Lease();
        await store.RecordAsync(lease, default);

        var claims = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(() => store.TryClaimAsync(lease.LeaseId, $"node-{i}", TimeSpan.FromMinutes(1), default))));

        Assert.Single(claims, won => won);
        Assert.False(await store.TryClaimAsync(lease.LeaseId, "node-late", TimeSpan.FromMinutes(1), default));
    }

    [Fact]
    public async Task A_lease_that_is_not_recorded_cannot_be_claimed()
    {
        var store = CreateStore();

        Assert.False(await store.TryClaimAsync(SecretLease.NewId(), "node-a", TimeSpan.FromMinutes(1), default));
        Assert.False(await store.IsUnclaimedAsync(SecretLease.NewId(), default));
    }

    [Fact]
    public async Task Unclaimed_holds_from_the_record_until_a_claim_and_again_after_its_release()
    {
        var store = CreateStore();
        var lease = Lease();
        await store.RecordAsync(lease, default);
        Assert.True(await store.IsUnclaimedAsync(lease.LeaseId, default));

        Assert.True(await store.TryClaimAsync(lease.LeaseId, "node-a", TimeSpan.FromMinutes(1), default));
        Assert.False(await store.IsUnclaimedAsync(lease.LeaseId, default));

        await store.ReleaseAsync(lease.LeaseId, "node-a", default);
        Assert.True(await store.IsUnclaimedAsync(lease.LeaseId, default));
        Assert.True(await store.TryClaimAsync(lease.LeaseId, "node-b", TimeSpan.FromMinutes(1), default));
    }

    [Fact]
    public async Task Only_the_claim_holder_completes_a_lease_and_completing_removes_it()
    {
        var store = CreateStore();
        var lease = Lease();
        var other = Lease();
        await store.RecordAsync(lease, default);
        await store.RecordAsync(other, default);
        Assert.False(await store.CompleteAsync(lease.LeaseId, "node-a", default));
        Assert.True(await store.TryClaimAsync(lease.LeaseId, "node-a", TimeSpan.FromMinutes(1), default));

        Assert.False(await store.CompleteAsync(lease.LeaseId, "node-b", default));
        Assert.NotNull(await store.GetAsync(lease.LeaseId, default));
        Assert.True(await store.CompleteAsync(lease.LeaseId, "node-a", default));

        Assert.Null(await store.GetAsync(lease.LeaseId, default));
        Assert.Equal([other.LeaseId], (await store.ListAsync(10, default)).Select(l => l.LeaseId));
        Assert.False(await store.TryClaimAsync(lease.LeaseId, "node-b", TimeSpan.FromMinutes(1), default));
        Assert.False(await store.CompleteAsync(lease.LeaseId, "node-a", default));
    }

    [Fact]
    public async Task Another_node_cannot_release_a_claim_it_does_not_hold()
    {
        var store = CreateStore();
        var lease = Lease();
        await store.RecordAsync(lease, default);
        Assert.True(await store.TryClaimAsync(lease.LeaseId, "node-a", TimeSpan.FromMinutes(1), default));

        await store.ReleaseAsync(lease.LeaseId, "node-b", default);

        Assert.False(await store.IsUnclaimedAsync(lease.LeaseId, default));
        Assert.False(await store.TryClaimAsync(lease.LeaseId, "node-b", TimeSpan.FromMinutes(1), default));
    }

    [Fact]
    public async Task A_crashed_claimants_lease_can_be_claimed_by_another_node_once_the_hold_lapses()
    {
        var store = CreateStore();
        var lease = Lease();
        await store.RecordAsync(lease, default);
        Assert.True(await store.TryClaimAsync(lease.LeaseId, "node-crashed", ShortHold, default));
        Assert.False(await store.TryClaimAsync(lease.LeaseId, "node-b", ShortHold, default));

        await LetClaimLapseAsync(store, lease.LeaseId, ShortHold);

        Assert.True(await store.TryClaimAsync(lease.LeaseId, "node-b", TimeSpan.FromMinutes(1), default));
        Assert.False(await store.CompleteAsync(lease.LeaseId, "node-crashed", default));
        Assert.True(await store.CompleteAsync(lease.LeaseId, "node-b", default));
    }
}
