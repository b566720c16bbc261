using Broker.Core.Risk;
using Microsoft.Extensions.Time.Testing;

namespace Broker.Server.Tests.Risk;

/// <summary>The behaviour every <see cref="IRiskStore"/> backend must have.</summary>
public abstract class RiskStoreContract
{
    protected FakeTimeProvider Time { get; } = new(DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));

    protected abstract IRiskStore CreateStore();

    private const string Agent = "spiffe://example.org/agents/a";

    private RiskSignal Signal(string id, RiskLevel level, TimeSpan? observedAgo = null, string? task = null, TimeSpan? validFor = null)
    {
        var observed = Time.GetUtcNow() - (observedAgo ?? TimeSpan.Zero);
        return new RiskSignal(id, Agent, task, level, 50, "prompt_injection", "ev-" + id, observed, observed + (validFor ?? TimeSpan.FromMinutes(10)), "spiffe://example.org/rp");
    }

    private ValueTask<SignalApplyResult> Apply(IRiskStore store, RiskSignal signal, RiskLevel? containment = RiskLevel.Critical) =>
        store.ApplyAsync(signal, signal.Digest(), containment, Time.GetUtcNow(), signal.ValidUntil + TimeSpan.FromMinutes(5), default);

    [Fact]
    public async Task A_signal_becomes_the_agents_current_risk()
    {
        var store = CreateStore();

        var result = await Apply(store, Signal("s1", RiskLevel.High));
        var view = await store.GetAsync(Agent, null, Time.GetUtcNow(), default);

        Assert.Equal(SignalApplyStatus.Applied, result.Status);
        Assert.Equal(FreezeChange.None, result.Freeze);
        Assert.NotNull(view.Agent.Current);
        Assert.Equal("s1", view.Agent.Current.SignalId);
        Assert.Equal(RiskLevel.High, view.Agent.Current.Level);
        Assert.Equal(50, view.Agent.Current.Score);
        Assert.Null(view.Agent.Freeze);
        Assert.Null(view.Task.Current);
    }

    [Fact]
    public async Task A_task_signal_is_kept_for_the_task_not_the_agent()
    {
        var store = CreateStore();

        await Apply(store, Signal("s1", RiskLevel.High, task: "task-9"));
        var view = await store.GetAsync(Agent, "task-9", Time.GetUtcNow(), default);

        Assert.Null(view.Agent.Current);
        Assert.Equal("s1", view.Task.Current?.SignalId);
    }

    [Fact]
    public async Task A_later_observed_signal_wins_and_an_older_one_changes_nothing()
    {
        var store = CreateStore();
        await Apply(store, Signal("newer", RiskLevel.High, observedAgo: TimeSpan.FromSeconds(10)));

        var older = await Apply(store, Signal("older", RiskLevel.None, observedAgo: TimeSpan.FromSeconds(20)));
        var later = await Apply(store, Signal("latest", RiskLevel.Low, observedAgo: TimeSpan.FromSeconds(5)));

        Assert.Equal(SignalApplyStatus.Superseded, older.Status);
        Assert.Equal(SignalApplyStatus.Applied, later.Status);
        Assert.Equal("latest", (await store.GetAsync(Agent, null, Time.GetUtcNow(), default)).Agent.Current?.SignalId);
    }

    [Fact]
    public async Task The_same_signal_again_is_a_duplicate_and_a_reused_id_with_other_content_is_refused()
    {
        var store = CreateStore();
        var signal = Signal("s1", RiskLevel.High);
        await Apply(store, signal);
        await Apply(store, Signal("s2", RiskLevel.Low, observedAgo: TimeSpan.FromSeconds(-1)));

        var retry = await Apply(store, signal);
        var reused = await Apply(store, signal with { Level = RiskLevel.None, ObservedAt = signal.ObservedAt.AddSeconds(5) });

        Assert.Equal(SignalApplyStatus.Duplicate, retry.Status);
        Assert.Equal(SignalApplyStatus.IdReused, reused.Status);
        Assert.Equal("s2", (await store.GetAsync(Agent, null, Time.GetUtcNow(), default)).Agent.Current?.SignalId);
    }

    [Fact]
    public async Task Risk_lapses_with_the_signals_validity()
    {
        var store = CreateStore();
        await Apply(store, Signal("s1", RiskLevel.High, validFor: TimeSpan.FromMinutes(1)));

        Time.Advance(TimeSpan.FromMinutes(2));

        Assert.Null((await store.GetAsync(Agent, null, Time.GetUtcNow(), default)).Agent.Current);
    }

    [Fact]
    public async Task The_containment_level_freezes_until_a_later_signal_below_it_lifts_the_freeze()
    {
        var store = CreateStore();

        var critical = await Apply(store, Signal("c1", RiskLevel.Critical, observedAgo: TimeSpan.FromSeconds(10)));
        var replay = await Apply(store, Signal("c1", RiskLevel.Critical, observedAgo: TimeSpan.FromSeconds(10)));
        var older = await Apply(store, Signal("old", RiskLevel.None, observedAgo: TimeSpan.FromSeconds(20)));
        var frozen = await store.GetAsync(Agent, null, Time.GetUtcNow(), default);
        var lifted = await Apply(store, Signal("ok", RiskLevel.Low));

        Assert.Equal(FreezeChange.Frozen, critical.Freeze);
        Assert.True(replay.FrozenByThisSignal);
        Assert.Equal(SignalApplyStatus.Superseded, older.Status);
        Assert.Equal("c1", frozen.Agent.Freeze?.SignalId);
        Assert.Equal(FreezeChange.Lifted, lifted.Freeze);
        Assert.Null((await store.GetAsync(Agent, null, Time.GetUtcNow(), default)).Agent.Freeze);
    }

    [Fact]
    public async Task A_freeze_outlives_the_signal_that_set_it()
    {
        var store = CreateStore();
        await Apply(store, Signal("c1", RiskLevel.Critical, validFor: TimeSpan.FromMinutes(1)));

        Time.Advance(TimeSpan.FromHours(2));
        var view = await store.GetAsync(Agent, null, Time.GetUtcNow(), default);

        Assert.Null(view.Agent.Current);
        Assert.Equal("c1", view.Agent.Freeze?.SignalId);
    }

    [Fact]
    public async Task Without_containment_a_critical_signal_does_not_freeze()
    {
        var store = CreateStore();

        var result = await Apply(store, Signal("c1", RiskLevel.Critical), containment: null);

        Assert.Equal(FreezeChange.None, result.Freeze);
        Assert.Null((await store.GetAsync(Agent, null, Time.GetUtcNow(), default)).Agent.Freeze);
    }

    [Fact]
    public async Task Clearing_forgets_risk_and_freeze_and_ignores_signals_observed_before_it()
    {
        var store = CreateStore();
        await Apply(store, Signal("c1", RiskLevel.Critical, observedAgo: TimeSpan.FromSeconds(30)));

        var before = await store.ClearAsync(RiskSubject.ForAgent(Agent), Time.GetUtcNow(), Time.GetUtcNow().AddHours(1), default);
        var late = await Apply(store, Signal("late", RiskLevel.Critical, observedAgo: TimeSpan.FromSeconds(10)));
        var view = await store.GetAsync(Agent, null, Time.GetUtcNow(), default);

        Assert.Equal("c1", before.Freeze?.SignalId);
        Assert.Equal(SignalApplyStatus.Superseded, late.Status);
        Assert.Null(view.Agent.Current);
        Assert.Null(view.Agent.Freeze);
    }
}
