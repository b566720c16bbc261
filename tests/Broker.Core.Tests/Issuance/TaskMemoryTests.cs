using System.Diagnostics.Metrics;
using Broker.Core.Diagnostics;
using Broker.Core.Issuance;
using Broker.Core.Revocation;
using Broker.Revocation;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Broker.Core.Tests.Issuance;

/// <summary>
/// What a node remembers of confirmed tasks, driven through a real revocation feed over the
/// in-memory log, with the clock in the test's hands: the races of issuing from memory while a
/// task moves on elsewhere.
/// </summary>
public sealed class TaskMemoryTests : IAsyncLifetime
{
    private const string Owner = "spiffe://example.org/agents/a";
    private const string Policy = "sha256:policy-1";
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 3, 9, 0, 0, TimeSpan.Zero));
    private readonly InMemoryRevocationStore _store = new();
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly List<(string Task, TaskPhase Phase)> _revokeAgain = [];
    private RevocationFeed _feed = null!;
    private TaskMemory _memory = null!;

    public async Task InitializeAsync()
    {
        _feed = new RevocationFeed(_store, Options.Create(new RevocationOptions()), _time, NullLogger<RevocationFeed>.Instance, new BrokerMetrics(_services.GetRequiredService<IMeterFactory>()));
        Assert.True(await _feed.SyncAsync(default));
        _memory = new TaskMemory(_feed, _time, capacity: 4);
        _memory.MintedAfterPhaseRevocation += (task, phase, _) => _revokeAgain.Add((task, phase));
    }

    public async Task DisposeAsync()
    {
        _memory.Dispose();
        _feed.Dispose();
        await _services.DisposeAsync();
    }

    [Fact]
    public void A_confirmation_is_used_only_for_its_owner_and_phase_and_within_its_hold()
    {
        _memory.Confirmed("t", Owner, TaskPhase.Planning, _time.GetUtcNow(), Policy);

        Assert.NotNull(_memory.Find("t", Owner, TaskPhase.Planning, Policy));
        Assert.Null(_memory.Find("t", Owner, TaskPhase.Execution, Policy));
        Assert.Null(_memory.Find("t", "spiffe://example.org/agents/b", TaskPhase.Planning, Policy));
        Assert.Null(_memory.Find("other", Owner, TaskPhase.Planning, Policy));
        _time.Advance(TaskMemory.Hold);
        Assert.Null(_memory.Find("t", Owner, TaskPhase.Planning, Policy));
    }

    [Fact]
    public async Task A_phase_revocation_forgets_the_task_and_revokes_again_only_tokens_minted_after_it()
    {
        _memory.Confirmed("early", Owner, TaskPhase.Planning, _time.GetUtcNow(), Policy);
        _memory.Confirmed("late", Owner, TaskPhase.Planning, _time.GetUtcNow(), Policy);
        var early = _memory.Find("early", Owner, TaskPhase.Planning, Policy)!;
        var late = _memory.Find("late", Owner, TaskPhase.Planning, Policy)!;
        early.NoteMinted(_time.GetUtcNow());
        var revokedAt = _time.GetUtcNow() + TimeSpan.FromSeconds(1);

        // The other node moved both tasks on; this node minted for "late" after the move, before hearing of it.
        late.NoteMinted(revokedAt + TimeSpan.FromSeconds(1));
        await AppendAsync(RevocationSelector.ForTaskPhase("early", "planning"), revokedAt);
        await AppendAsync(RevocationSelector.ForTaskPhase("late", "planning"), revokedAt);

        Assert.True(early.IsClosed);
        Assert.True(late.IsClosed);
        Assert.Null(_memory.Find("early", Owner, TaskPhase.Planning, Policy));
        Assert.Equal([("late", TaskPhase.Planning)], _revokeAgain);
    }

    [Fact]
    public async Task A_revocation_of_another_phase_or_task_leaves_the_entry_and_a_task_revocation_forgets_it()
    {
        _memory.Confirmed("t", Owner, TaskPhase.Execution, _time.GetUtcNow(), Policy);
        await AppendAsync(RevocationSelector.ForTaskPhase("t", "planning"), _time.GetUtcNow());
        await AppendAsync(RevocationSelector.ForTask("unrelated"), _time.GetUtcNow());
        Assert.NotNull(_memory.Find("t", Owner, TaskPhase.Execution, Policy));

        await AppendAsync(RevocationSelector.ForTask("t"), _time.GetUtcNow());
        Assert.Null(_memory.Find("t", Owner, TaskPhase.Execution, Policy));
        Assert.Empty(_revokeAgain);
    }

    /// <summary>A confirmation answered after the feed applied a revocation of that phase may be stale: it is not remembered.</summary>
    [Fact]
    public async Task A_confirmation_older_than_a_revocation_already_applied_is_not_remembered()
    {
        var askedAt = _time.GetUtcNow();
        await AppendAsync(RevocationSelector.ForTaskPhase("t", "planning"), askedAt + TimeSpan.FromMilliseconds(5));
        _memory.Confirmed("t", Owner, TaskPhase.Planning, askedAt, Policy);

        Assert.Null(_memory.Find("t", Owner, TaskPhase.Planning, Policy));
    }

    /// <summary>
    /// Shared state answered another phase (the task moved on elsewhere): tokens minted from the
    /// old entry that no revocation in the index covers are revoked again; the same phase
    /// confirmed again keeps the entry, so a later revocation still sees its tokens.
    /// </summary>
    [Fact]
    public void A_confirmation_of_another_phase_replaces_the_entry_and_revokes_its_uncovered_tokens_again()
    {
        _memory.Confirmed("t", Owner, TaskPhase.Planning, _time.GetUtcNow(), Policy);
        var planning = _memory.Find("t", Owner, TaskPhase.Planning, Policy)!;
        _memory.Confirmed("t", Owner, TaskPhase.Planning, _time.GetUtcNow(), Policy);
        Assert.Same(planning, _memory.Find("t", Owner, TaskPhase.Planning, Policy));

        planning.NoteMinted(_time.GetUtcNow());
        _memory.Confirmed("t", Owner, TaskPhase.Execution, _time.GetUtcNow(), Policy);

        Assert.True(planning.IsClosed);
        Assert.NotNull(_memory.Find("t", Owner, TaskPhase.Execution, Policy));
        Assert.Equal([("t", TaskPhase.Planning)], _revokeAgain);
    }

    [Fact]
    public async Task An_epoch_loss_forgets_every_task()
    {
        _memory.Confirmed("t", Owner, TaskPhase.Planning, _time.GetUtcNow(), Policy);
        var entry = _memory.Find("t", Owner, TaskPhase.Planning, Policy)!;
        _store.LoseEverything();
        await _feed.SyncAsync(default);

        Assert.True(entry.IsClosed);
        Assert.Equal(0, _memory.Count);
    }

    [Fact]
    public void A_full_memory_makes_room_only_from_confirmations_past_their_hold()
    {
        for (var i = 0; i < 4; i++)
        {
            _memory.Confirmed($"t{i}", Owner, TaskPhase.Planning, _time.GetUtcNow(), Policy);
        }

        _memory.Confirmed("t4", Owner, TaskPhase.Planning, _time.GetUtcNow(), Policy);
        Assert.Null(_memory.Find("t4", Owner, TaskPhase.Planning, Policy));

        _time.Advance(TaskMemory.Hold);
        _memory.Confirmed("t5", Owner, TaskPhase.Planning, _time.GetUtcNow(), Policy);
        Assert.NotNull(_memory.Find("t5", Owner, TaskPhase.Planning, Policy));
        Assert.Equal(1, _memory.Count);
    }

    /// <summary>
    /// The mover revokes the phase it leaves before it writes the new one, so a read made after
    /// that revocation can still answer the old phase: any revocation of the phase in the index
    /// keeps it out of memory, whatever its time.
    /// </summary>
    [Fact]
    public async Task A_phase_the_index_holds_a_revocation_of_is_not_remembered_even_from_a_later_read()
    {
        await AppendAsync(RevocationSelector.ForTaskPhase("t", "planning"), _time.GetUtcNow());
        _time.Advance(TimeSpan.FromMilliseconds(2));
        _memory.Confirmed("t", Owner, TaskPhase.Planning, _time.GetUtcNow(), Policy);

        Assert.Null(_memory.Find("t", Owner, TaskPhase.Planning, Policy));
        _memory.Confirmed("t", Owner, TaskPhase.Execution, _time.GetUtcNow(), Policy);
        Assert.NotNull(_memory.Find("t", Owner, TaskPhase.Execution, Policy));
    }

    /// <summary>An agent or fleet-wide cut-off matching the same read must not hide the phase's own revocation.</summary>
    [Fact]
    public async Task An_agent_or_global_cutoff_does_not_hide_a_phase_revocation()
    {
        var askedAt = _time.GetUtcNow();
        await AppendAsync(RevocationSelector.ForAgent(Owner), askedAt + TimeSpan.FromMilliseconds(10));
        await AppendAsync(RevocationSelector.IssuedBeforeTime(askedAt + TimeSpan.FromMilliseconds(10)), askedAt);
        await AppendAsync(RevocationSelector.ForTaskPhase("t", "planning"), askedAt + TimeSpan.FromMilliseconds(5));
        _memory.Confirmed("t", Owner, TaskPhase.Planning, askedAt, Policy);

        Assert.Null(_memory.Find("t", Owner, TaskPhase.Planning, Policy));
    }

    /// <summary>
    /// A full memory evicts only entries whose last token is older than the feed's arrival bound:
    /// a phase revocation made elsewhere before that token, and heard of late, still revokes it again.
    /// </summary>
    [Fact]
    public async Task A_full_memory_keeps_an_entry_with_a_recent_token_so_a_late_phase_revocation_still_covers_it()
    {
        var t0 = _time.GetUtcNow();
        for (var i = 0; i < 4; i++)
        {
            _memory.Confirmed($"t{i}", Owner, TaskPhase.Planning, t0, Policy);
        }

        _time.Advance(TaskMemory.Hold - TimeSpan.FromSeconds(1));
        var entry = _memory.Find("t0", Owner, TaskPhase.Planning, Policy)!;
        var movedAt = _time.GetUtcNow() - TimeSpan.FromSeconds(1);
        entry.NoteMinted(_time.GetUtcNow());
        _time.Advance(TimeSpan.FromSeconds(1));

        _memory.Confirmed("t9", Owner, TaskPhase.Planning, _time.GetUtcNow(), Policy);
        Assert.NotNull(_memory.Find("t9", Owner, TaskPhase.Planning, Policy));
        Assert.Equal(2, _memory.Count);
        await AppendAsync(RevocationSelector.ForTaskPhase("t0", "planning"), movedAt);

        Assert.Equal([("t0", TaskPhase.Planning)], _revokeAgain);
    }

    /// <summary>
    /// An entry serves only the policy it was confirmed under; a reload closes every entry but
    /// keeps its tokens, and a confirmation after the reload inherits them, so a late phase
    /// revocation still revokes them again.
    /// </summary>
    [Fact]
    public async Task A_policy_reload_closes_entries_and_their_tokens_stay_covered()
    {
        _memory.Confirmed("t", Owner, TaskPhase.Planning, _time.GetUtcNow(), Policy);
        Assert.Null(_memory.Find("t", Owner, TaskPhase.Planning, "sha256:policy-2"));
        var entry = _memory.Find("t", Owner, TaskPhase.Planning, Policy)!;
        var movedAt = _time.GetUtcNow();
        entry.NoteMinted(movedAt + TimeSpan.FromSeconds(1));

        _memory.Clear();
        Assert.True(entry.IsClosed);
        Assert.Null(_memory.Find("t", Owner, TaskPhase.Planning, Policy));

        _time.Advance(TimeSpan.FromMilliseconds(1));
        _memory.Confirmed("t", Owner, TaskPhase.Planning, _time.GetUtcNow(), Policy);
        var confirmedAgain = _memory.Find("t", Owner, TaskPhase.Planning, Policy);
        Assert.NotNull(confirmedAgain);
        Assert.NotSame(entry, confirmedAgain);
        Assert.Empty(_revokeAgain);
        await AppendAsync(RevocationSelector.ForTaskPhase("t", "planning"), movedAt);

        Assert.Equal([("t", TaskPhase.Planning)], _revokeAgain);
    }

    /// <summary>
    /// A lost connection to shared state clears memory as a reload does; an answer to a question
    /// sent before that (possibly read from a primary that has since failed over) is not
    /// remembered, and one asked afterwards is.
    /// </summary>
    [Fact]
    public void An_answer_asked_before_a_clear_is_not_remembered()
    {
        var askedBefore = _time.GetUtcNow();
        _time.Advance(TimeSpan.FromMilliseconds(1));
        _memory.Clear();

        _memory.Confirmed("t", Owner, TaskPhase.Planning, askedBefore, Policy);
        Assert.Null(_memory.Find("t", Owner, TaskPhase.Planning, Policy));

        _time.Advance(TimeSpan.FromMilliseconds(1));
        _memory.Confirmed("t", Owner, TaskPhase.Planning, _time.GetUtcNow(), Policy);
        Assert.NotNull(_memory.Find("t", Owner, TaskPhase.Planning, Policy));
        Assert.Empty(_revokeAgain);
    }

    /// <summary>A replaced entry's tokens count as covered only by the task's own revocations, not by an agent cut-off.</summary>
    [Fact]
    public async Task A_phase_change_revokes_again_tokens_only_an_agent_cutoff_covers()
    {
        _memory.Confirmed("t", Owner, TaskPhase.Planning, _time.GetUtcNow(), Policy);
        var planning = _memory.Find("t", Owner, TaskPhase.Planning, Policy)!;
        planning.NoteMinted(_time.GetUtcNow());
        await AppendAsync(RevocationSelector.ForAgent(Owner), _time.GetUtcNow() + TimeSpan.FromSeconds(1));

        _memory.Confirmed("t", Owner, TaskPhase.Execution, _time.GetUtcNow(), Policy);

        Assert.Equal([("t", TaskPhase.Planning)], _revokeAgain);
    }

    [Fact]
    public async Task A_move_out_of_a_phase_that_keeps_its_tokens_forgets_the_task_and_revokes_nothing()
    {
        _memory.Confirmed("kept", Owner, TaskPhase.Planning, _time.GetUtcNow(), Policy);
        _memory.Confirmed("elsewhere", Owner, TaskPhase.Execution, _time.GetUtcNow(), Policy);
        var kept = _memory.Find("kept", Owner, TaskPhase.Planning, Policy)!;
        kept.NoteMinted(_time.GetUtcNow() + TimeSpan.FromSeconds(1));

        await AnnounceAsync("kept", "planning");
        await AnnounceAsync("elsewhere", "planning");

        Assert.True(kept.IsClosed);
        Assert.Null(_memory.Find("kept", Owner, TaskPhase.Planning, Policy));
        Assert.NotNull(_memory.Find("elsewhere", Owner, TaskPhase.Execution, Policy));
        Assert.Empty(_revokeAgain);
        Assert.Empty(_feed.LiveEntries());
        Assert.False(_feed.Index.IsTaskOrPhaseRevoked("kept", "planning", DateTimeOffset.MinValue));
    }

    /// <summary>
    /// The mover announces before it writes the new phase, so a read made meanwhile, or answered
    /// after the announcement arrived, can still say the phase left: not remembered for a hold.
    /// </summary>
    [Fact]
    public async Task The_phase_a_move_left_is_not_remembered_again_within_a_hold()
    {
        var askedBefore = _time.GetUtcNow();
        await AnnounceAsync("t", "planning");

        _memory.Confirmed("t", Owner, TaskPhase.Planning, askedBefore, Policy);
        Assert.Null(_memory.Find("t", Owner, TaskPhase.Planning, Policy));
        _time.Advance(TimeSpan.FromSeconds(1));
        _memory.Confirmed("t", Owner, TaskPhase.Planning, _time.GetUtcNow(), Policy);
        Assert.Null(_memory.Find("t", Owner, TaskPhase.Planning, Policy));

        _memory.Confirmed("t", Owner, TaskPhase.Execution, _time.GetUtcNow(), Policy);
        Assert.NotNull(_memory.Find("t", Owner, TaskPhase.Execution, Policy));

        _time.Advance(TaskMemory.Hold);
        _memory.Confirmed("t", Owner, TaskPhase.Planning, _time.GetUtcNow(), Policy);
        Assert.NotNull(_memory.Find("t", Owner, TaskPhase.Planning, Policy));
        Assert.Empty(_revokeAgain);
    }

    /// <summary>Redis can answer the new phase before the move's row reaches this node: a kept phase is then dropped, not revoked.</summary>
    [Fact]
    public void A_kept_phase_replaced_by_the_next_before_the_move_arrives_revokes_nothing()
    {
        _memory.Confirmed("kept", Owner, TaskPhase.Planning, _time.GetUtcNow(), Policy, keepsTokensOnExit: true);
        _memory.Find("kept", Owner, TaskPhase.Planning, Policy)!.NoteMinted(_time.GetUtcNow());
        _memory.Confirmed("revoking", Owner, TaskPhase.Planning, _time.GetUtcNow(), Policy);
        _memory.Find("revoking", Owner, TaskPhase.Planning, Policy)!.NoteMinted(_time.GetUtcNow());

        _time.Advance(TimeSpan.FromSeconds(1));
        _memory.Confirmed("kept", Owner, TaskPhase.Execution, _time.GetUtcNow(), Policy);
        _memory.Confirmed("revoking", Owner, TaskPhase.Execution, _time.GetUtcNow(), Policy);

        Assert.Equal([("revoking", TaskPhase.Planning)], _revokeAgain);
        Assert.NotNull(_memory.Find("kept", Owner, TaskPhase.Execution, Policy));
    }

    private async Task AnnounceAsync(string taskId, string phaseLeft)
    {
        await _store.AnnounceAsync(new PhaseMove(taskId, phaseLeft, _time.GetUtcNow()), default);
        Assert.True(await _feed.SyncAsync(default));
    }

    private async Task AppendAsync(RevocationSelector selector, DateTimeOffset revokedAt)
    {
        await _store.AppendAsync([new RevocationDraft(selector, "test", "moved on", revokedAt, revokedAt + TimeSpan.FromHours(1))], default);
        Assert.True(await _feed.SyncAsync(default));
    }
}
