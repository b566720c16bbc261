using Broker.Revocation;
using Broker.Revocation.Wire;
using Google.Protobuf.WellKnownTypes;
using Selector = Broker.Revocation.RevocationSelector;
using WireSelector = Broker.V1.RevocationSelector;

namespace Broker.ResourceServer.Tests;

/// <summary>
/// The one revocation wire mapping (broker/Shared/RevocationWire.cs, compiled into the broker and
/// this SDK): what the broker streams, the SDK reads back as the same revocation.
/// </summary>
public sealed class RevocationWireTests
{
    private static readonly DateTimeOffset RevokedAt = new(2026, 12, 2, 10, 0, 0, TimeSpan.Zero);

    public static TheoryData<string> Kinds => new() { "token", "task", "task-phase", "agent", "trust-domain", "issued-before", "agent-issued-before" };

    private static Selector SelectorOf(string kind) => kind switch
    {
        "token" => Selector.ForToken("tok-1"),
        "task" => Selector.ForTask("task-1"),
        "task-phase" => Selector.ForTaskPhase("task-1", "execution"),
        "agent" => Selector.ForAgent("spiffe://example.org/agents/a"),
        "trust-domain" => Selector.ForTrustDomain("example.org"),
        "issued-before" => Selector.IssuedBeforeTime(RevokedAt.AddMinutes(-1)),
        _ => Selector.IssuedBeforeTime(RevokedAt.AddMinutes(-1), "spiffe://example.org/agents/a"),
    };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Every_selector_kind_the_broker_streams_is_read_back_unchanged_without_who_or_why(string kind)
    {
        var entry = new RevocationEntry("1700000000000-0", SelectorOf(kind), "operator:olga", "incident 7", RevokedAt, RevokedAt.AddHours(1));

        var streamed = RevocationWire.ToStreamWire(entry);

        Assert.True(RevocationWire.TryToEntry(streamed, out var read));
        Assert.Equal(entry with { Actor = "", Reason = "" }, read);
        Assert.True(RevocationWire.TryToEntry(RevocationWire.ToWire(entry), out var full));
        Assert.Equal(entry, full);
    }

    [Fact]
    public void A_selector_with_no_target_a_phase_or_a_time_missing_is_not_read_and_says_why()
    {
        Assert.False(RevocationWire.TryToSelector(new WireSelector(), out _, out var none));
        Assert.Equal("A selector must name exactly one target.", none);
        Assert.False(RevocationWire.TryToSelector(new WireSelector { TaskPhase = new Broker.V1.TaskPhaseTarget { TaskId = "t" } }, out _, out var phase));
        Assert.Contains("task_phase.phase", phase, StringComparison.Ordinal);
        Assert.False(RevocationWire.TryToSelector(new WireSelector { IssuedBefore = new Broker.V1.IssuedBeforeTarget() }, out _, out var time));
        Assert.Contains("issued_before.time", time, StringComparison.Ordinal);

        var noExpiry = new Broker.V1.Revocation { Id = "1", Selector = new WireSelector { TaskId = "t" }, RevokedAt = Timestamp.FromDateTimeOffset(RevokedAt) };
        Assert.False(RevocationWire.TryToEntry(noExpiry, out _));
    }

    [Fact]
    public void Without_revoked_at_the_later_expiry_is_the_cut_off()
    {
        var wire = new Broker.V1.Revocation { Id = "1", Selector = new WireSelector { Agent = "spiffe://example.org/agents/a" }, ExpiresAt = Timestamp.FromDateTimeOffset(RevokedAt.AddHours(1)) };

        Assert.True(RevocationWire.TryToEntry(wire, out var read));
        Assert.Equal(RevokedAt.AddHours(1), read.RevokedAt);
    }
}
