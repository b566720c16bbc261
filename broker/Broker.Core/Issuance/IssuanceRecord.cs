namespace Broker.Core.Issuance;

/// <summary>What the store records for one issuance.</summary>
/// <param name="ProofKey">Replay key of a single-use proof (trust source + jti), or null.</param>
/// <param name="ProofExpiresAt">How long the replay key must be remembered.</param>
/// <param name="TaskRetention">How long an idle task record is kept after its last token expires.</param>
/// <param name="PhaseChangeConfirmed">The earlier phase's tokens have been dealt with, so the task may move to <paramref name="Phase"/>.</param>
public sealed record IssuanceRecord(
    string TokenId,
    string TaskId,
    string Subject,
    TaskPhase Phase,
    DateTimeOffset IssuedAt,
    DateTimeOffset ExpiresAt,
    string? ProofKey,
    DateTimeOffset ProofExpiresAt,
    TimeSpan TaskRetention,
    bool PhaseChangeConfirmed = false);
