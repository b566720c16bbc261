using System.Globalization;
using Broker.Revocation;

namespace Broker.Core.Revocation;

/// <summary>The --dev revocation log: one process, no persistence, an epoch from the start.</summary>
public sealed class InMemoryRevocationStore : IRevocationStore
{
    private readonly Lock _lock = new();
    private readonly List<(long Seq, RevocationEntry? Entry, PhaseMove? Move)> _log = [];
    private long _next = 1;
    private string? _epoch = Guid.NewGuid().ToString("N");
    private IssuanceFreeze? _freeze;

    public event Action? Appended;

    public Task<IReadOnlyList<RevocationEntry>> AppendAsync(IReadOnlyList<RevocationDraft> drafts, CancellationToken cancellationToken)
    {
        List<RevocationEntry> appended;
        lock (_lock)
        {
            if (_epoch is null)
            {
                throw new RevocationStateLostException();
            }

            appended = drafts.Select(AppendLocked).ToList();
        }

        Appended?.Invoke();
        return Task.FromResult<IReadOnlyList<RevocationEntry>>(appended);
    }

    public Task AnnounceAsync(PhaseMove move, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_epoch is null)
            {
                throw new RevocationStateLostException();
            }

            _log.Add((_next++, null, move));
        }

        Appended?.Invoke();
        return Task.CompletedTask;
    }

    public Task<RevocationPage> ReadAfterAsync(string? afterId, int max, CancellationToken cancellationToken)
    {
        var after = afterId is null ? 0 : long.Parse(afterId, CultureInfo.InvariantCulture);
        lock (_lock)
        {
            var rows = _log.Where(e => e.Seq > after).Take(max).ToList();
            return Task.FromResult(new RevocationPage(
                [.. rows.Where(r => r.Entry is not null).Select(r => r.Entry!)],
                _epoch,
                _freeze,
                [.. rows.Where(r => r.Move is not null).Select(r => r.Move!)],
                rows.Count > 0 ? rows[^1].Seq.ToString(CultureInfo.InvariantCulture) : null,
                rows.Count));
        }
    }

    public Task<(string Epoch, RevocationEntry Cutoff)> RestoreEpochAsync(RevocationDraft cutoff, IReadOnlyList<RevocationDraft> carried, CancellationToken cancellationToken)
    {
        RevocationEntry entry;
        string epoch;
        lock (_lock)
        {
            epoch = _epoch = Guid.NewGuid().ToString("N");
            entry = AppendLocked(cutoff);
            foreach (var draft in carried)
            {
                AppendLocked(draft);
            }
        }

        Appended?.Invoke();
        return Task.FromResult((epoch, entry));
    }

    public Task SetFreezeAsync(IssuanceFreeze? freeze, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            _freeze = freeze;
        }

        Appended?.Invoke();
        return Task.CompletedTask;
    }

    public Task TrimAsync(DateTimeOffset olderThan, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            _log.RemoveAll(e => (e.Entry?.RevokedAt ?? e.Move!.At) < olderThan);
        }

        return Task.CompletedTask;
    }

    /// <summary>Simulates a store that lost its data (tests of the fail-closed stance).</summary>
    public void LoseEverything()
    {
        lock (_lock)
        {
            _log.Clear();
            _epoch = null;
        }
    }

    private RevocationEntry AppendLocked(RevocationDraft draft)
    {
        var seq = _next++;
        var entry = new RevocationEntry(seq.ToString(CultureInfo.InvariantCulture), draft.Selector, draft.Actor, draft.Reason, draft.RevokedAt, draft.ExpiresAt);
        _log.Add((seq, entry, null));
        return entry;
    }
}
