using Broker.Core.Approvals;

namespace Broker.Core.Tests.Approvals;

public sealed class ApprovalWakeupsTests
{
    private readonly InMemoryApprovalStore _store = new();

    [Fact]
    public void A_change_wakes_every_waiter_registered_before_it_and_forgets_the_request()
    {
        var wakeups = new ApprovalWakeups(_store);
        using var first = wakeups.Register("a1");
        using var second = wakeups.Register("a1");
        using var other = wakeups.Register("a2");

        Raise("a1");

        Assert.True(first.Changed.IsCompletedSuccessfully);
        Assert.True(second.Changed.IsCompletedSuccessfully);
        Assert.False(other.Changed.IsCompleted);
        Assert.Equal(1, wakeups.Watched);

        // A waiter registering after the change waits for the next one.
        using var later = wakeups.Register("a1");
        Assert.False(later.Changed.IsCompleted);
    }

    [Fact]
    public void Waiters_that_leave_without_a_change_leave_nothing_behind()
    {
        var wakeups = new ApprovalWakeups(_store);
        var first = wakeups.Register("a1");
        var second = wakeups.Register("a1");

        first.Dispose();
        Assert.Equal(1, wakeups.Watched);
        second.Dispose();
        second.Dispose();
        Assert.Equal(0, wakeups.Watched);

        for (var i = 0; i < 1000; i++)
        {
            using var _ = wakeups.Register("unknown-" + i);
        }

        Assert.Equal(0, wakeups.Watched);
    }

    private void Raise(string id)
    {
        // The in-memory store announces applied changes the way Redis pub/sub does across nodes.
        var now = DateTimeOffset.UtcNow;
        var scopes = new[] { "deploy:prod" };
        var request = new ApprovalRequest(
            id,
            ApprovalRequest.ComputeDigest("spiffe://example.org/agents/a", "t", TaskPhase.Execution, scopes, "https://api.example.org", 300, "low", null),
            "spiffe://example.org/agents/a", "t", TaskPhase.Execution, scopes, "https://api.example.org", 300, "low", null, null, "olga", "sha256:p",
            now, now.AddMinutes(5),
            [new ApprovalGate(scopes, ["approver"], 1)]);
        _store.CreateAsync(request, now.AddHours(1), default).AsTask().GetAwaiter().GetResult();
        Assert.Equal(ApprovalChangeStatus.Applied, _store.DenyAsync(id, "bob", "no", now, default).AsTask().GetAwaiter().GetResult().Outcome);
    }
}
