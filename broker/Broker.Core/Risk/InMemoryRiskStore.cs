namespace Broker.Core.Risk;

/// <summary>Risk state for --dev and tests: one process, one lock. Same semantics as the Redis store.</summary>
public sealed class InMemoryRiskStore : IRiskStore
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, (string Digest, DateTimeOffset Until)> _ids = new(StringComparer.Ordinal);
    private readonly Dictionary<RiskSubject, RiskRecord> _current = [];
    private readonly Dictionary<RiskSubject, FreezeRecord> _freezes = [];
    private readonly Dictionary<RiskSubject, (DateTimeOffset At, DateTimeOffset Until)> _floors = [];

    public ValueTask<SignalApplyResult> ApplyAsync(RiskSignal signal, string digest, RiskLevel? containment, DateTimeOffset now, DateTimeOffset keepIdUntil, CancellationToken cancellationToken)
    {
        var subject = signal.Subject;
        lock (_lock)
        {
            if (_ids.TryGetValue(signal.SignalId, out var known) && known.Until > now)
            {
                return ValueTask.FromResult(known.Digest != digest
                    ? new SignalApplyResult(SignalApplyStatus.IdReused)
                    : new SignalApplyResult(SignalApplyStatus.Duplicate, FrozenByThisSignal: _freezes.TryGetValue(subject, out var f) && f.SignalId == signal.SignalId));
            }

            _ids[signal.SignalId] = (digest, keepIdUntil);
            if (_ids.Count > 10_000)
            {
                foreach (var stale in _ids.Where(p => p.Value.Until <= now).Select(p => p.Key).ToList())
                {
                    _ids.Remove(stale);
                }
            }

            var superseded =
                (_floors.TryGetValue(subject, out var floor) && floor.Until > now && signal.ObservedAt <= floor.At)
                || (_current.TryGetValue(subject, out var current) && current.ValidUntil > now && current.ObservedAt >= signal.ObservedAt)
                || (_freezes.TryGetValue(subject, out var freeze) && freeze.ObservedAt >= signal.ObservedAt);
            if (superseded)
            {
                return ValueTask.FromResult(new SignalApplyResult(SignalApplyStatus.Superseded));
            }

            if (signal.ValidUntil > now)
            {
                _current[subject] = new RiskRecord(signal.SignalId, signal.Level, signal.Score, signal.Detector, signal.ObservedAt, signal.ValidUntil, signal.Source);
            }

            var change = FreezeChange.None;
            if (containment is { } level && signal.Level >= level)
            {
                _freezes[subject] = new FreezeRecord(signal.SignalId, signal.Level, signal.ObservedAt);
                change = FreezeChange.Frozen;
            }
            else if (_freezes.Remove(subject))
            {
                change = FreezeChange.Lifted;
            }

            return ValueTask.FromResult(new SignalApplyResult(SignalApplyStatus.Applied, change));
        }
    }

    public ValueTask<RiskView> GetAsync(string? agent, string? taskId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return ValueTask.FromResult(new RiskView(
                agent is null ? RiskState.Empty : StateOf(RiskSubject.ForAgent(agent), now),
                taskId is null ? RiskState.Empty : StateOf(RiskSubject.ForTask(taskId), now)));
        }
    }

    public ValueTask<RiskState> ClearAsync(RiskSubject subject, DateTimeOffset now, DateTimeOffset floorUntil, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var before = StateOf(subject, now);
            _current.Remove(subject);
            _freezes.Remove(subject);
            _floors[subject] = (now, floorUntil);
            return ValueTask.FromResult(before);
        }
    }

    private RiskState StateOf(RiskSubject subject, DateTimeOffset now)
    {
        var current = _current.TryGetValue(subject, out var record) && record.ValidUntil > now ? record : null;
        return current is null && !_freezes.ContainsKey(subject)
            ? RiskState.Empty
            : new RiskState(current, _freezes.GetValueOrDefault(subject));
    }
}
