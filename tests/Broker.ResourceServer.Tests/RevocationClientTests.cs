using Broker.Revocation;
using Broker.V1;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using WireSelector = Broker.V1.RevocationSelector;

namespace Broker.ResourceServer.Tests;

/// <summary>The stream state machine and the stale stance, driven message by message on a fake clock.</summary>
public sealed class RevocationClientTests
{
    private static readonly DateTimeOffset Start = new(2030, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private readonly FakeTimeProvider _time = new(Start);

    private BrokerRevocationClient Client(Action<BrokerJwtBearerOptions>? configure = null)
    {
        var options = new BrokerJwtBearerOptions { Authority = "https://broker", Audience = "https://api", RevocationAddress = "https://broker:5080" };
        configure?.Invoke(options);
        return new BrokerRevocationClient(Options.Create(options), _time, NullLogger<BrokerRevocationClient>.Instance);
    }

    private TokenFacts Token(string id = "tok-1", string task = "task-1", string phase = "planning", string subject = "spiffe://example.org/agents/a", TimeSpan? issuedAgo = null) =>
        new(id, subject, task, phase, _time.GetUtcNow() - (issuedAgo ?? TimeSpan.FromMinutes(1)));

    private V1.Revocation Entry(string id, WireSelector selector, TimeSpan? expiresIn = null) => new()
    {
        Id = id,
        Selector = selector,
        Actor = "operator:alice",
        Reason = "test",
        RevokedAt = Timestamp.FromDateTimeOffset(_time.GetUtcNow()),
        ExpiresAt = Timestamp.FromDateTimeOffset(_time.GetUtcNow() + (expiresIn ?? TimeSpan.FromMinutes(10))),
    };

    private static RevocationEvent Event(V1.Revocation revocation) => new() { Revocation = revocation };

    private static RevocationEvent Complete(string cursor, string epoch = "e1", bool reset = false) =>
        new() { SnapshotComplete = new SnapshotComplete { Cursor = cursor, Epoch = epoch, Reset = reset } };

    private static RevocationEvent Heartbeat(string cursor) => new() { Heartbeat = new Heartbeat { Cursor = cursor } };

    private static RevocationCheck Check(BrokerRevocationClient client, TokenFacts token) => client.Check(token, out _);

    [Fact]
    public void Before_the_first_snapshot_state_is_unknown_and_tokens_are_refused()
    {
        var client = Client();
        Assert.False(client.IsCurrent);
        Assert.Null(client.LastConfirmed);
        Assert.Equal(RevocationCheck.StateUnknown, Check(client, Token()));
    }

    [Fact]
    public void A_completed_snapshot_makes_state_current_and_applies_its_entries()
    {
        var client = Client();
        client.BeginStream();
        client.Handle(Event(Entry("1", new WireSelector { TokenId = "tok-revoked" })));
        Assert.False(client.IsCurrent); // snapshot not complete yet
        client.Handle(Complete("e1/1"));

        Assert.True(client.IsCurrent);
        Assert.Equal(Start, client.LastConfirmed);
        Assert.Equal("e1/1", client.Cursor);
        Assert.Equal("e1", client.Epoch);
        Assert.Equal(1, client.EntriesApplied);
        Assert.Equal(RevocationCheck.Revoked, client.Check(Token("tok-revoked"), out var kind));
        Assert.Equal(RevocationKind.Token, kind);
        Assert.Equal(RevocationCheck.Active, Check(client, Token("tok-other")));
    }

    [Fact]
    public void Entries_apply_before_the_snapshot_completes()
    {
        // A revocation never waits for the end of the snapshot to take effect.
        var client = Client();
        client.BeginStream();
        client.Handle(Event(Entry("1", new WireSelector { TaskId = "task-1" })));
        Assert.Equal(RevocationCheck.Revoked, Check(client, Token(task: "task-1")));
    }

    [Fact]
    public void State_goes_stale_after_the_bound_without_a_heartbeat_and_fails_closed()
    {
        var client = Client();
        client.BeginStream();
        client.Handle(Complete("e1/0"));

        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.True(client.IsCurrent); // exactly at the bound
        Assert.Equal(RevocationCheck.Active, Check(client, Token()));

        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.False(client.IsCurrent);
        Assert.Equal(RevocationCheck.StateUnknown, Check(client, Token()));
    }

    [Fact]
    public void Heartbeats_keep_state_current_and_move_the_cursor()
    {
        var client = Client();
        client.BeginStream();
        client.Handle(Complete("e1/0"));
        for (var i = 1; i <= 10; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(500));
            client.Handle(Heartbeat($"e1/{i}"));
        }

        Assert.True(client.IsCurrent);
        Assert.Equal(Start + TimeSpan.FromSeconds(5), client.LastConfirmed);
        Assert.Equal("e1/10", client.Cursor);
    }

    [Fact]
    public void Heartbeats_during_a_snapshot_do_not_confirm_state()
    {
        var client = Client();
        client.BeginStream();
        client.Handle(Heartbeat("e1/5"));
        Assert.False(client.IsCurrent);
        Assert.Null(client.Cursor);
    }

    [Fact]
    public void Live_entries_confirm_state()
    {
        var client = Client();
        client.BeginStream();
        client.Handle(Complete("e1/0"));
        _time.Advance(TimeSpan.FromSeconds(1.5));
        client.Handle(Event(Entry("1", new WireSelector { TokenId = "tok-9" })));
        _time.Advance(TimeSpan.FromSeconds(1.5));
        Assert.True(client.IsCurrent);
    }

    [Fact]
    public void The_stale_bound_is_configurable()
    {
        var client = Client(o => o.StalenessBound = TimeSpan.FromMilliseconds(300));
        client.BeginStream();
        client.Handle(Complete("e1/0"));
        _time.Advance(TimeSpan.FromMilliseconds(301));
        Assert.Equal(RevocationCheck.StateUnknown, Check(client, Token()));
    }

    [Fact]
    public void Fail_open_accepts_unconfirmed_but_still_refuses_revocations_already_held()
    {
        var client = Client(o => o.StaleStance = StaleStance.FailOpen);
        client.BeginStream();
        client.Handle(Event(Entry("1", new WireSelector { TokenId = "tok-revoked" })));
        client.Handle(Complete("e1/1"));
        client.EndStream();
        _time.Advance(TimeSpan.FromSeconds(10));

        Assert.False(client.IsCurrent);
        Assert.Equal(RevocationCheck.ActiveUnconfirmed, Check(client, Token("tok-fine")));
        Assert.Equal(RevocationCheck.Revoked, Check(client, Token("tok-revoked")));
    }

    [Fact]
    public void Fail_closed_still_says_revoked_for_a_revoked_token_when_stale()
    {
        var client = Client();
        client.BeginStream();
        client.Handle(Event(Entry("1", new WireSelector { TokenId = "tok-revoked" })));
        client.Handle(Complete("e1/1"));
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(RevocationCheck.Revoked, Check(client, Token("tok-revoked")));
    }

    [Fact]
    public void A_resumed_stream_keeps_what_was_held()
    {
        var client = Client();
        client.BeginStream();
        client.Handle(Event(Entry("1", new WireSelector { TokenId = "tok-a" })));
        client.Handle(Complete("e1/1"));
        client.EndStream();

        // Reconnect: only what came after the cursor, reset = false.
        client.BeginStream();
        client.Handle(Event(Entry("2", new WireSelector { TokenId = "tok-b" })));
        client.Handle(Complete("e1/2"));

        Assert.Equal(RevocationCheck.Revoked, Check(client, Token("tok-a")));
        Assert.Equal(RevocationCheck.Revoked, Check(client, Token("tok-b")));
        Assert.Equal(0, client.Resets);
        Assert.Equal(2, client.Snapshots);
    }

    [Fact]
    public void A_reset_snapshot_replaces_what_was_held_without_an_empty_moment()
    {
        var client = Client();
        client.BeginStream();
        client.Handle(Event(Entry("1", new WireSelector { TokenId = "tok-old" })));
        client.Handle(Complete("e1/1"));
        client.EndStream();

        client.BeginStream();
        client.Handle(Event(Entry("7", new WireSelector { TokenId = "tok-new" })));
        // Until the snapshot ends, the old entries still hold.
        Assert.Equal(RevocationCheck.Revoked, Check(client, Token("tok-old")));
        client.Handle(Complete("e2/7", epoch: "e2", reset: true));

        Assert.Equal(RevocationCheck.Active, Check(client, Token("tok-old")));
        Assert.Equal(RevocationCheck.Revoked, Check(client, Token("tok-new")));
        Assert.Equal(1, client.Resets);
        Assert.Equal("e2", client.Epoch);
    }

    [Fact]
    public void A_new_epoch_counts_as_a_reset_even_if_not_flagged()
    {
        var client = Client();
        client.BeginStream();
        client.Handle(Event(Entry("1", new WireSelector { TokenId = "tok-old" })));
        client.Handle(Complete("e1/1"));
        client.EndStream();

        client.BeginStream();
        client.Handle(Complete("e2/0", epoch: "e2"));
        Assert.Equal(RevocationCheck.Active, Check(client, Token("tok-old")));
        Assert.Equal(1, client.Resets);
    }

    [Fact]
    public void Every_selector_kind_is_enforced()
    {
        var client = Client();
        client.BeginStream();
        client.Handle(Event(Entry("1", new WireSelector { TaskPhase = new TaskPhaseTarget { TaskId = "task-p", Phase = Phase.Planning } })));
        client.Handle(Event(Entry("2", new WireSelector { Agent = "spiffe://example.org/agents/bad" })));
        client.Handle(Event(Entry("3", new WireSelector { TrustDomain = "evil.org" })));
        client.Handle(Event(Entry("4", new WireSelector { IssuedBefore = new IssuedBeforeTarget { Time = Timestamp.FromDateTimeOffset(Start - TimeSpan.FromMinutes(30)) } })));
        client.Handle(Event(Entry("5", new WireSelector { IssuedBefore = new IssuedBeforeTarget { Time = Timestamp.FromDateTimeOffset(Start - TimeSpan.FromMinutes(5)), Agent = "spiffe://example.org/agents/old" } })));
        client.Handle(Complete("e1/5"));

        Assert.Equal(RevocationCheck.Revoked, Check(client, Token(task: "task-p", phase: "planning")));
        Assert.Equal(RevocationCheck.Active, Check(client, Token(task: "task-p", phase: "execution")));
        Assert.Equal(RevocationCheck.Revoked, Check(client, Token(subject: "spiffe://example.org/agents/bad")));
        Assert.Equal(RevocationCheck.Revoked, Check(client, Token(subject: "spiffe://evil.org/agents/x")));
        Assert.Equal(RevocationCheck.Revoked, Check(client, Token(issuedAgo: TimeSpan.FromMinutes(31))));
        Assert.Equal(RevocationCheck.Active, Check(client, Token(issuedAgo: TimeSpan.FromMinutes(29))));
        Assert.Equal(RevocationCheck.Revoked, Check(client, Token(subject: "spiffe://example.org/agents/old", issuedAgo: TimeSpan.FromMinutes(6))));
        Assert.Equal(RevocationCheck.Active, Check(client, Token(subject: "spiffe://example.org/agents/old", issuedAgo: TimeSpan.FromMinutes(4))));

        // Agent cut-off: a token issued after the revocation is fine.
        _time.Advance(TimeSpan.FromMinutes(1));
        client.Handle(Heartbeat("e1/5"));
        Assert.Equal(RevocationCheck.Active, client.Check(new TokenFacts("t", "spiffe://example.org/agents/bad", "task-x", "planning", _time.GetUtcNow()), out _));
    }

    [Fact]
    public void Entries_without_a_readable_selector_are_skipped()
    {
        var client = Client();
        client.BeginStream();
        client.Handle(Event(Entry("1", new WireSelector())));
        client.Handle(Event(Entry("2", new WireSelector { TaskPhase = new TaskPhaseTarget { TaskId = "t", Phase = Phase.Unspecified } })));
        client.Handle(Complete("e1/2"));
        Assert.Equal(0, client.EntriesApplied);
        Assert.True(client.IsCurrent);
    }

    [Fact]
    public void Entries_already_lapsed_beyond_the_clock_skew_are_not_applied()
    {
        var client = Client();
        client.BeginStream();
        client.Handle(Event(Entry("1", new WireSelector { TokenId = "tok-long-gone" }, expiresIn: TimeSpan.FromMinutes(-1))));
        client.Handle(Event(Entry("2", new WireSelector { TokenId = "tok-in-skew" }, expiresIn: TimeSpan.FromSeconds(-10))));
        client.Handle(Complete("e1/2"));
        Assert.Equal(1, client.EntriesApplied);
        Assert.Equal(RevocationCheck.Revoked, Check(client, Token("tok-in-skew")));
    }

    [Fact]
    public void Lapsed_entries_are_pruned_periodically()
    {
        var client = Client(o => o.PruneInterval = TimeSpan.FromSeconds(30));
        client.BeginStream();
        client.Handle(Event(Entry("1", new WireSelector { TokenId = "tok-short" }, expiresIn: TimeSpan.FromSeconds(20))));
        client.Handle(Event(Entry("2", new WireSelector { TokenId = "tok-long" }, expiresIn: TimeSpan.FromMinutes(10))));
        client.Handle(Complete("e1/2"));
        Assert.Equal(2, client.Index.Count);

        // Past expiry plus skew (20 s + 30 s), and past the prune interval.
        _time.Advance(TimeSpan.FromSeconds(51));
        client.Handle(Heartbeat("e1/2"));
        Assert.Equal(1, client.Index.Count);
        Assert.Equal(RevocationCheck.Revoked, Check(client, Token("tok-long")));
    }
}
