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
        _memory.MintedAfterPhaseRevocation += (task, phase) => _revokeAgain.Add((task, phase));
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
        _memory.Confirmed("t", Owner, TaskPhase.Planning, _time.GetUtcNow());

        Assert.NotNull(_memory.Find("t", Owner, TaskPhase.Planning));
        Assert.Null(_memory.Find("t", Owner, TaskPhase.Execution));
        Assert.Null(_memory.Find("t", "spiffe://example.org/agents/b", TaskPhase.Planning));
        Assert.Null(_memory.Find("other", Owner, TaskPhase.Planning));
        _time.Advance(TaskMemory.Hold);
        Assert.Null(_memory.Find("t", Owner, TaskPhase.Planning));
    }

    [Fact]
    public async Task A_phase_revocation_forgets_the_task_and_revokes_again_only_tokens_minted_after_it()
    {
        _memory.Confirmed("early", Owner, TaskPhase.Planning, _time.GetUtcNow());
        _memory.Confirmed("late", Owner, TaskPhase.Planning, _time.GetUtcNow());
        var early = _memory.Find("early", Owner, TaskPhase.Planning)!;
        var late = _memory.Find("late", Owner, TaskPhase.Planning)!;
        early.NoteMinted(_time.GetUtcNow());
        var revokedAt = _time.GetUtcNow() + TimeSpan.FromSeconds(1);

        // The other node moved both tasks on; this node minted for "late" after the move, before hearing of it.
        late.NoteMinted(revokedAt + TimeSpan.FromSeconds(1));
        await AppendAsync(RevocationSelector.ForTaskPhase("early", "planning"), revokedAt);
        await AppendAsync(RevocationSelector.ForTaskPhase("late", "planning"), revokedAt);

        Assert.True(early.IsClosed);
        Assert.True(late.IsClosed);
        Assert.Null(_memory.Find("early", Owner, TaskPhase.Planning));
        Assert.Equal([("late", TaskPhase.Planning)], _revokeAgain);
    }

    [Fact]
    public async Task A_revocation_of_another_phase_or_task_leaves_the_entry_and_a_task_revocation_forgets_it()
    {
        _memory.Confirmed("t", Owner, TaskPhase.Execution, _time.GetUtcNow());
        await AppendAsync(RevocationSelector.ForTaskPhase("t", "planning"), _time.GetUtcNow());
        await AppendAsync(RevocationSelector.ForTask("unrelated"), _time.GetUtcNow());
        Assert.NotNull(_memory.Find("t", Owner, TaskPhase.Execution));

        await AppendAsync(RevocationSelector.ForTask("t"), _time.GetUtcNow());
        Assert.Null(_memory.Find("t", Owner, TaskPhase.Execution));
        Assert.Empty(_revokeAgain);
    }

    /// <summary>A confirmation answered after the feed applied a revocation of that phase may be stale: it is not remembered.</summary>
    [Fact]
    public async Task A_confirmation_older_than_a_revocation_already_applied_is_not_remembered()
    {
        var askedAt = _time.GetUtcNow();
        await AppendAsync(RevocationSelector.ForTaskPhase("t", "planning"), askedAt + TimeSpan.FromMilliseconds(5));
        _memory.Confirmed("t", Owner, TaskPhase.Planning, askedAt);

        Assert.Null(_memory.Find("t", Owner, TaskPhase.Planning));
    }

    /// <summary>
    /// Shared state answered another phase (the task moved on elsewhere): tokens minted from the
    /// old entry that no revocation in the index covers are revoked again; the same phase
    /// confirmed again keeps the entry, so a later revocation still sees its tokens.
    /// </summary>
    [Fact]
    public void A_confirmation_of_another_phase_replaces_the_entry_and_revokes_its_uncovered_tokens_again()
    {
        _memory.Confirmed("t", Owner, TaskPhase.Planning, _time.GetUtcNow());
        var planning = _memory.Find("t", Owner, TaskPhase.Planning)!;
        _memory.Confirmed("t", Owner, TaskPhase.Planning, _time.GetUtcNow());
        Assert.Same(planning, _memory.Find("t", Owner, TaskPhase.Planning));

        planning.NoteMinted(_time.GetUtcNow());
        _memory.Confirmed("t", Owner, TaskPhase.Execution, _time.GetUtcNow());

        Assert.True(planning.IsClosed);
        Assert.NotNull(_memory.Find("t", Owner, TaskPhase.Execution));
        Assert.Equal([("t", TaskPhase.Planning)], _revokeAgain);
    }

    [Fact]
    public async Task An_epoch_loss_forgets_every_task()
    {
        _memory.Confirmed("t", Owner, TaskPhase.Planning, _time.GetUtcNow());
        var entry = _memory.Find("t", Owner, TaskPhase.Planning)!;
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
            _memory.Confirmed($"t{i}", Owner, TaskPhase.Planning, _time.GetUtcNow());
        }

        _memory.Confirmed("t4", Owner, TaskPhase.Planning, _time.GetUtcNow());
        Assert.Null(_memory.Find("t4", Owner, TaskPhase.Planning));

        _time.Advance(TaskMemory.Hold);
        _memory.Confirmed("t5", Owner, TaskPhase.Planning, _time.GetUtcNow());
        Assert.NotNull(_memory.Find("t5", Owner, TaskPhase.Planning));
        Assert.Equal(1, _memory.Count);
    }

    private async Task AppendAsync(RevocationSelector selector, DateTimeOffset revokedAt)
    {
        await _store.AppendAsync([new RevocationDraft(selector, "test", "moved on", revokedAt, revokedAt + TimeSpan.FromHours(1))], default);
        Assert.True(await _feed.SyncAsync(default));
    }
}
