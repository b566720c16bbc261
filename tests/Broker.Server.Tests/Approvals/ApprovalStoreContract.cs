using Broker.Core;
using Broker.Core.Approvals;
using Broker.Redis;
using Broker.Server.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;

namespace Broker.Server.Tests.Approvals;

/// <summary>The behaviour every <see cref="IApprovalStore"/> backend must have.</summary>
public abstract class ApprovalStoreContract
{
    protected FakeTimeProvider Time { get; } = new(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));

    protected abstract IApprovalStore CreateStore();

    /// <summary>Another view of the same state, as another node would have it.</summary>
    protected abstract IApprovalStore PeerOf(IApprovalStore store);

    private async Task<ApprovalRequest> CreateAsync(IApprovalStore store, int quorum = 1, TimeSpan? validity = null)
    {
        var now = Time.GetUtcNow();
        var scopes = new[] { "deploy:prod" };
        var request = new ApprovalRequest(
            ApprovalRequest.NewId(),
            ApprovalRequest.ComputeDigest("spiffe://example.org/agents/a", "t-1", TaskPhase.Execution, scopes, "https://api.example.org", 300, "low", "why"),
            "spiffe://example.org/agents/a", "t-1", TaskPhase.Execution, scopes, "https://api.example.org", 300, "low", "why", null, "olga", "sha256:p",
            now, now + (validity ?? TimeSpan.FromMinutes(15)),
            [new ApprovalGate(scopes, ["approver"], quorum)]);
        await store.CreateAsync(request, request.ExpiresAt + TimeSpan.FromHours(1), default);
        return request;
    }

    [Fact]
    public async Task A_request_is_stored_exactly_and_listed_while_pending()
    {
        var store = CreateStore();
        var request = await CreateAsync(store);

        var record = await store.GetAsync(request.Id, default);

        Assert.NotNull(record);
        Assert.Equal(ApprovalStatus.Pending, record.Status);
        Assert.Equal(request.Digest, record.Request.Digest);
        Assert.True(record.Request.DigestMatches());
        Assert.Equal(request.Gates[0].Approvers, record.Request.Gates[0].Approvers);
        Assert.Contains(await store.ListPendingAsync(Time.GetUtcNow(), 10, default), r => r.Request.Id == request.Id);
        Assert.Null(await store.GetAsync(ApprovalRequest.NewId(), default));
    }

    [Fact]
    public async Task Quorum_counts_distinct_approvers_once_each()
    {
        var store = CreateStore();
        var request = await CreateAsync(store, quorum: 2);

        Assert.Equal(new ApprovalChange(ApprovalChangeStatus.Applied, ApprovalStatus.Pending), await store.ApproveAsync(request.Id, "ann", [0], Time.GetUtcNow(), default));
        Assert.Equal(ApprovalChangeStatus.AlreadyVoted, (await store.ApproveAsync(request.Id, "ann", [0], Time.GetUtcNow(), default)).Outcome);
        Assert.Equal(new ApprovalChange(ApprovalChangeStatus.Applied, ApprovalStatus.Approved), await store.ApproveAsync(request.Id, "bob", [0], Time.GetUtcNow(), default));

        var record = await store.GetAsync(request.Id, default);
        Assert.Equal(["ann", "bob"], record!.Votes.Select(v => v.Approver).Order());
        Assert.DoesNotContain(await store.ListPendingAsync(Time.GetUtcNow(), 10, default), r => r.Request.Id == request.Id);
    }

    [Fact]
    public async Task An_approval_is_consumed_once_even_by_racing_callers()
    {
        var store = CreateStore();
        var request = await CreateAsync(store);
        await store.ApproveAsync(request.Id, "ann", [0], Time.GetUtcNow(), default);

        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => store.ConsumeAsync(request.Id, "tok-" + i, Time.GetUtcNow(), default).AsTask()));

        Assert.Single(results, r => r.Outcome == ApprovalChangeStatus.Applied);
        Assert.All(results.Where(r => r.Outcome != ApprovalChangeStatus.Applied), r => Assert.Equal(ApprovalStatus.Consumed, r.Status));
        Assert.Equal(ApprovalStatus.Consumed, (await store.GetAsync(request.Id, default))!.Status);
    }

    [Fact]
    public async Task A_pending_request_cannot_be_consumed_and_a_denied_one_cannot_be_approved()
    {
        var store = CreateStore();
        var request = await CreateAsync(store);

        Assert.Equal(ApprovalChangeStatus.WrongState, (await store.ConsumeAsync(request.Id, "tok", Time.GetUtcNow(), default)).Outcome);
        Assert.Equal(ApprovalChangeStatus.Applied, (await store.DenyAsync(request.Id, "ann", "no", Time.GetUtcNow(), default)).Outcome);
        Assert.Equal(new ApprovalChange(ApprovalChangeStatus.WrongState, ApprovalStatus.Denied), await store.ApproveAsync(request.Id, "bob", [0], Time.GetUtcNow(), default));

        var record = await store.GetAsync(request.Id, default);
        Assert.Equal("ann", record!.DecidedBy);
        Assert.Equal("no", record.Reason);
    }

    [Fact]
    public async Task Expiry_refuses_every_change_and_is_marked_once()
    {
        var store = CreateStore();
        var request = await CreateAsync(store, validity: TimeSpan.FromSeconds(5));
        await store.ApproveAsync(request.Id, "ann", [0], Time.GetUtcNow(), default);
        Assert.Equal(ApprovalChangeStatus.WrongState, (await store.ExpireAsync(request.Id, Time.GetUtcNow(), default)).Outcome);

        Time.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal(ApprovalChangeStatus.Expired, (await store.ConsumeAsync(request.Id, "tok", Time.GetUtcNow(), default)).Outcome);
        Assert.Equal(ApprovalChangeStatus.Expired, (await store.DenyAsync(request.Id, "bob", "late", Time.GetUtcNow(), default)).Outcome);
        Assert.Equal(ApprovalChangeStatus.Applied, (await store.ExpireAsync(request.Id, Time.GetUtcNow(), default)).Outcome);
        Assert.Equal(ApprovalChangeStatus.WrongState, (await store.ExpireAsync(request.Id, Time.GetUtcNow(), default)).Outcome);
        Assert.Equal(ApprovalStatus.Expired, (await store.GetAsync(request.Id, default))!.Status);
    }

    [Fact]
    public async Task Requests_that_expired_unseen_are_listed_as_lapsed_until_marked()
    {
        var store = CreateStore();
        var lapsing = await CreateAsync(store, validity: TimeSpan.FromSeconds(30));
        var live = await CreateAsync(store, validity: TimeSpan.FromMinutes(10));
        var denied = await CreateAsync(store, validity: TimeSpan.FromSeconds(30));
        await store.DenyAsync(denied.Id, "bob", "no", Time.GetUtcNow(), default);
        var unused = await CreateAsync(store, validity: TimeSpan.FromSeconds(30));
        await store.ApproveAsync(unused.Id, "bob", [0], Time.GetUtcNow(), default);
        var used = await CreateAsync(store, validity: TimeSpan.FromSeconds(30));
        await store.ApproveAsync(used.Id, "bob", [0], Time.GetUtcNow(), default);
        await store.ConsumeAsync(used.Id, "tok", Time.GetUtcNow(), default);

        Assert.DoesNotContain(lapsing.Id, await store.ListLapsedAsync(Time.GetUtcNow(), 100, default));
        Time.Advance(TimeSpan.FromMinutes(1));

        var lapsed = await store.ListLapsedAsync(Time.GetUtcNow(), 100, default);
        Assert.Contains(lapsing.Id, lapsed);
        Assert.DoesNotContain(live.Id, lapsed);
        Assert.DoesNotContain(denied.Id, lapsed);
        Assert.Contains(unused.Id, lapsed);
        Assert.DoesNotContain(used.Id, lapsed);

        Assert.Equal(ApprovalChangeStatus.Applied, (await store.ExpireAsync(lapsing.Id, Time.GetUtcNow(), default)).Outcome);
        Assert.DoesNotContain(lapsing.Id, await store.ListLapsedAsync(Time.GetUtcNow(), 100, default));
    }

    [Fact]
    public async Task Applied_changes_are_announced_to_every_node_and_refused_ones_are_not()
    {
        var store = CreateStore();
        var seen = new System.Collections.Concurrent.ConcurrentQueue<string>();
        PeerOf(store).Changed += seen.Enqueue;
        var approved = await CreateAsync(store);
        var untouched = await CreateAsync(store);

        Assert.Equal(ApprovalChangeStatus.Applied, (await store.ApproveAsync(approved.Id, "bob", [0], Time.GetUtcNow(), default)).Outcome);
        Assert.NotEqual(ApprovalChangeStatus.Applied, (await store.ApproveAsync(untouched.Id + "x", "bob", [0], Time.GetUtcNow(), default)).Outcome);
        Assert.Equal(ApprovalChangeStatus.Applied, (await store.ConsumeAsync(approved.Id, "tok", Time.GetUtcNow(), default)).Outcome);

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (seen.Count(id => id == approved.Id) < 2 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        Assert.Equal(2, seen.Count(id => id == approved.Id));
        Assert.DoesNotContain(untouched.Id, seen);
        Assert.DoesNotContain(untouched.Id + "x", seen);
    }
}

public sealed class InMemoryApprovalStoreTests : ApprovalStoreContract
{
    protected override IApprovalStore CreateStore() => new InMemoryApprovalStore();

    protected override IApprovalStore PeerOf(IApprovalStore store) => store;
}

[Collection(RedisCollection.Name)]
public sealed class RedisApprovalStoreTests(RedisFixture redis) : ApprovalStoreContract
{
    private RedisKeys _keys = new(RedisFixture.NewPrefix());

    private readonly RedisDurableWrites _writes = new(redis.Connection, new RedisRevocationOptions());

    protected override IApprovalStore CreateStore() => new RedisApprovalStore(redis.Connection, _keys = new RedisKeys(RedisFixture.NewPrefix()), _writes);

    /// <summary>A second connection, as another node has.</summary>
    protected override IApprovalStore PeerOf(IApprovalStore store) =>
        new RedisApprovalStore(StackExchange.Redis.ConnectionMultiplexer.Connect(redis.Server.Configuration), _keys, _writes);

    /// <summary>
    /// With replicas required and none attached (this Redis has none), a new request and a
    /// decision are in force on the primary but unconfirmed, and the store says so instead of
    /// reporting success or hiding that they happened.
    /// </summary>
    [Fact]
    public async Task Requests_and_decisions_that_replicas_do_not_confirm_are_reported_unconfirmed()
    {
        var keys = new RedisKeys(RedisFixture.NewPrefix());
        using var strictWrites = new RedisDurableWrites(redis.Connection, new RedisRevocationOptions { MinReplicas = 1, ReplicaTimeout = TimeSpan.FromMilliseconds(50) });
        using var strict = new RedisApprovalStore(redis.Connection, keys, strictWrites);
        var now = DateTimeOffset.UtcNow;
        var scopes = new[] { "deploy:prod" };
        var request = new ApprovalRequest(
            ApprovalRequest.NewId(),
            ApprovalRequest.ComputeDigest("spiffe://example.org/agents/a", "t-1", TaskPhase.Execution, scopes, "https://api.example.org", 300, "low", "why"),
            "spiffe://example.org/agents/a", "t-1", TaskPhase.Execution, scopes, "https://api.example.org", 300, "low", "why", null, "olga", "sha256:p",
            now, now + TimeSpan.FromMinutes(15),
            [new ApprovalGate(scopes, ["approver"], 1)]);

        Assert.False(await strict.CreateAsync(request, now + TimeSpan.FromHours(1), default));
        Assert.NotNull(await strict.GetAsync(request.Id, default));

        var denied = await strict.DenyAsync(request.Id, "bob", "no", now, default);
        Assert.Equal(new ApprovalChange(ApprovalChangeStatus.Applied, ApprovalStatus.Denied, Confirmed: false), denied);
        Assert.Equal(ApprovalStatus.Denied, (await strict.GetAsync(request.Id, default))!.Status);

        // A refused change wrote nothing: nothing to confirm.
        Assert.Equal(new ApprovalChange(ApprovalChangeStatus.NotFound, null), await strict.ApproveAsync("missing", "bob", [0], now, default));
    }
}
