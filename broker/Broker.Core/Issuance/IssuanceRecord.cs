namespace Broker.Core.Issuance;

/// <summary>What the store records for one issuance.</summary>
/// <param name="TaskRetention">How long an idle task record is kept after its last token expires.</param>
/// <param name="MaxTasksPerWorkload">How many retained tasks the workload may hold; a new task beyond it is refused.</param>
/// <param name="PhaseChangeConfirmed">The earlier phase's tokens have been dealt with, so the task may move to <paramref name="Phase"/>.</param>
/// <param name="Delegated">A token exchanged down to a sub-agent: recorded under the task's owner (<paramref name="Subject"/>) without moving the task's phase.</param>
public sealed record IssuanceRecord(
    string TokenId,
    string TaskId,
    string Subject,
    TaskPhase Phase,
    DateTimeOffset IssuedAt,
    DateTimeOffset ExpiresAt,
    TimeSpan TaskRetention,
    int MaxTasksPerWorkload,
    bool PhaseChangeConfirmed = false,
    bool Delegated = false);
