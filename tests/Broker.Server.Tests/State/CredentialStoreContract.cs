using Broker.Core;
using Broker.Core.Issuance;
using Broker.Core.State;
using Microsoft.Extensions.Time.Testing;

namespace Broker.Server.Tests.State;

/// <summary>The behaviour every <see cref="ICredentialStore"/> backend must have.</summary>
public abstract class CredentialStoreContract
{
    protected FakeTimeProvider Time { get; } = new(DateTimeOffset.UtcNow);

    protected abstract ICredentialStore CreateStore();

    private IssuanceRecord Record(string task = "task-1", string subject = "spiffe://example.org/agents/a", TaskPhase phase = TaskPhase.Planning, int maxTasks = 100)
    {
        var now = Time.GetUtcNow();
        return new IssuanceRecord(Guid.NewGuid().ToString("N"), task, subject, phase, now, now.AddMinutes(5), TimeSpan.FromHours(1), maxTasks);
    }

    [Fact]
    public async Task First_issuance_claims_the_task_for_the_workload()
    {
        var store = CreateStore();
        var record = Record();

        var outcome = await store.RecordIssuanceAsync(record, default);

        Assert.Equal(IssuanceStatus.Recorded, outcome.Status);
        var task = await store.GetTaskAsync("task-1", default);
        Assert.NotNull(task);
        Assert.Equal(record.Subject, task.Owner);
        Assert.Equal(TaskPhase.Planning, task.Phase);
        Assert.Null(task.EndedAt);
    }

    [Fact]
    public async Task Another_workload_cannot_use_a_claimed_task()
    {
        var store = CreateStore();
        await store.RecordIssuanceAsync(Record(), default);
        var intruder = Record(subject: "spiffe://example.org/agents/b");

        var outcome = await store.RecordIssuanceAsync(intruder, default);

        Assert.Equal(IssuanceStatus.TaskNotOwned, outcome.Status);
        Assert.Equal("spiffe://example.org/agents/a", (await store.GetTaskAsync("task-1", default))!.Owner);
    }

    [Fact]
    public async Task Phase_change_waits_for_confirmation_and_writes_nothing_until_then()
    {
        var store = CreateStore();
        await store.RecordIssuanceAsync(Record(), default);
        var moving = Record(phase: TaskPhase.Execution);

        var pending = await store.RecordIssuanceAsync(moving, default);
        var unchanged = await store.GetTaskAsync("task-1", default);
        var confirmed = await store.RecordIssuanceAsync(moving with { PhaseChangeConfirmed = true }, default);
        var moved = await store.GetTaskAsync("task-1", default);

        Assert.Equal(IssuanceStatus.PhaseChangePending, pending.Status);
        Assert.Equal(TaskPhase.Planning, pending.PreviousPhase);
        Assert.Equal(TaskPhase.Planning, unchanged!.Phase);
        Assert.Equal(IssuanceStatus.Recorded, confirmed.Status);
        Assert.Equal(TaskPhase.Execution, moved!.Phase);
    }

    [Fact]
    public async Task A_delegated_token_of_another_phase_is_recorded_without_moving_the_task()
    {
        var store = CreateStore();
        await store.RecordIssuanceAsync(Record(phase: TaskPhase.Execution), default);
        var delegated = Record(phase: TaskPhase.Planning) with { Delegated = true };

        var outcome = await store.RecordIssuanceAsync(delegated, default);

        Assert.Equal(IssuanceStatus.Recorded, outcome.Status);
        Assert.Equal(TaskPhase.Execution, (await store.GetTaskAsync("task-1", default))!.Phase);
    }

    [Fact]
    public async Task Operator_can_end_any_task_even_one_never_used()
    {
        var store = CreateStore();
        await store.RecordIssuanceAsync(Record(), default);

        var owned = await store.EndTaskAsync("task-1", owner: null, Time.GetUtcNow(), TimeSpan.FromHours(1), default);
        var unused = await store.EndTaskAsync("never-used", owner: null, Time.GetUtcNow(), TimeSpan.FromHours(1), default);
        var claim = await store.RecordIssuanceAsync(Record(task: "never-used"), default);

        Assert.Equal(EndTaskStatus.Ended, owned.Status);
        Assert.Equal(EndTaskStatus.Ended, unused.Status);
        Assert.Equal(IssuanceStatus.TaskEnded, claim.Status);
    }

    [Fact]
    public async Task Ended_task_refuses_issuance_and_ending_is_idempotent()
    {
        var store = CreateStore();
        var first = Record();
        await store.RecordIssuanceAsync(first, default);
        var endedAt = Time.GetUtcNow();

        var ended = await store.EndTaskAsync("task-1", first.Subject, endedAt, TimeSpan.FromHours(1), default);
        Time.Advance(TimeSpan.FromSeconds(5));
        var again = await store.EndTaskAsync("task-1", first.Subject, Time.GetUtcNow(), TimeSpan.FromHours(1), default);
        var after = Record();
        var outcome = await store.RecordIssuanceAsync(after, default);

        Assert.Equal(EndTaskStatus.Ended, ended.Status);
        Assert.Equal(EndTaskStatus.AlreadyEnded, again.Status);
        Assert.Equal(endedAt.ToUnixTimeMilliseconds(), again.EndedAt!.Value.ToUnixTimeMilliseconds());
        Assert.Equal(IssuanceStatus.TaskEnded, outcome.Status);
    }

    [Fact]
    public async Task Only_the_owner_can_end_a_task()
    {
        var store = CreateStore();
        await store.RecordIssuanceAsync(Record(), default);

        var outcome = await store.EndTaskAsync("task-1", "spiffe://example.org/agents/b", Time.GetUtcNow(), TimeSpan.FromHours(1), default);

        Assert.Equal(EndTaskStatus.NotOwned, outcome.Status);
        Assert.Null((await store.GetTaskAsync("task-1", default))!.EndedAt);
    }

    [Fact]
    public async Task Ending_an_unknown_task_is_not_found_and_creates_nothing()
    {
        var store = CreateStore();

        var outcome = await store.EndTaskAsync("nope", "spiffe://example.org/agents/a", Time.GetUtcNow(), TimeSpan.FromHours(1), default);

        Assert.Equal(EndTaskStatus.NotFound, outcome.Status);
        Assert.Null(await store.GetTaskAsync("nope", default));
    }

    [Fact]
    public async Task Single_use_proof_is_claimed_once()
    {
        var store = CreateStore();
        var until = Time.GetUtcNow().AddMinutes(5);

        var first = await store.ClaimProofAsync("jwt-svid:example.org:jti-1", until, default);
        var replay = await store.ClaimProofAsync("jwt-svid:example.org:jti-1", until, default);
        var other = await store.ClaimProofAsync("jwt-svid:example.org:jti-2", until, default);

        Assert.True(first);
        Assert.False(replay);
        Assert.True(other);
    }

    [Fact]
    public async Task A_workload_holds_at_most_its_task_limit_and_the_refusal_writes_nothing()
    {
        var store = CreateStore();
        await store.RecordIssuanceAsync(Record(task: "mine-1", maxTasks: 2), default);
        await store.RecordIssuanceAsync(Record(task: "mine-2", maxTasks: 2), default);

        var third = Record(task: "mine-3", maxTasks: 2);
        var refused = await store.RecordIssuanceAsync(third, default);
        var again = await store.RecordIssuanceAsync(Record(task: "mine-1", maxTasks: 2), default);
        var otherWorkload = await store.RecordIssuanceAsync(Record(task: "theirs-1", subject: "spiffe://example.org/agents/b", maxTasks: 2), default);

        Assert.Equal(IssuanceStatus.TaskLimitReached, refused.Status);
        Assert.Null(await store.GetTaskAsync("mine-3", default));
        Assert.Equal(IssuanceStatus.Recorded, again.Status);
        Assert.Equal(IssuanceStatus.Recorded, otherWorkload.Status);
    }

    [Fact]
    public async Task A_repeat_issuance_in_the_same_phase_leaves_the_task_as_it_was()
    {
        var store = CreateStore();
        await store.RecordIssuanceAsync(Record(), default);
        var before = await store.GetTaskAsync("task-1", default);
        Time.Advance(TimeSpan.FromMinutes(1));

        var repeat = await store.RecordIssuanceAsync(Record(), default);

        Assert.Equal(IssuanceStatus.Recorded, repeat.Status);
        Assert.Equal(TaskPhase.Planning, repeat.PreviousPhase);
        Assert.Equal(before, await store.GetTaskAsync("task-1", default));
    }
}
