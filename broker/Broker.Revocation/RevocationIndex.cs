using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace Broker.Revocation;

/// <summary>
/// Every revocation in force, held so that checking a token is a handful of hash lookups
/// (O(1), no I/O, no allocation). One writer applies entries; any number of readers check.
/// Token ids Broker mints are 16 random bytes, kept in a flat 128-bit table (one cache line per
/// lookup, 48 bytes per entry) behind a Bloom filter; any other id shape falls back to a string
/// set. A second Bloom filter over the task, task-phase, agent and trust-domain keys lets a live
/// token skip those maps, whose lookups are cache misses once they hold thousands of entries.
/// </summary>
public sealed class RevocationIndex
{
    // Values are unix-ms: the entry's expiry (tokens, tasks) or its cut-off time (the rest).
    private readonly TokenIdSet _tokens = new();
    private readonly ConcurrentDictionary<string, long> _otherTokens = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _tasks = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Task, string Phase), Cutoff> _taskPhases = new();
    private readonly ConcurrentDictionary<string, Cutoff> _agents = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Cutoff> _trustDomains = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Cutoff>.AlternateLookup<ReadOnlySpan<char>> _trustDomainsBySpan;
    // Boxed so readers never see a half-written struct; only the single writer replaces it.
    private volatile StrongBox<Cutoff> _global = new(Cutoff.None);

    // Most of the index is token ids; the other maps are usually empty. The single writer keeps
    // these flags so a check skips empty maps without touching them (a lookup is a cache miss).
    private volatile bool _hasOtherTokens;
    private volatile bool _hasTasks;
    private volatile bool _hasTaskPhases;
    private volatile bool _hasAgents;
    private volatile bool _hasTrustDomains;

    private const int MinSelectorCapacity = 1024;
    private volatile BlockedBloomFilter _selectorFilter = new(MinSelectorCapacity);
    private int _selectorKeys;

    public RevocationIndex() => _trustDomainsBySpan = _trustDomains.GetAlternateLookup<ReadOnlySpan<char>>();

    public int Count => _tokens.Count + _otherTokens.Count + _tasks.Count + _taskPhases.Count + _agents.Count + _trustDomains.Count + (_global.Value.IsSet ? 1 : 0);

    public void Apply(RevocationEntry entry)
    {
        var selector = entry.Selector;
        var expires = entry.ExpiresAt.ToUnixTimeMilliseconds();
        switch (selector.Kind)
        {
            case RevocationKind.Token:
                if (TryParseTokenId(selector.Value, out var id))
                {
                    _tokens.Add(id, expires);
                }
                else
                {
                    _otherTokens[selector.Value] = expires;
                    _hasOtherTokens = true;
                }

                break;
            case RevocationKind.Task:
                _tasks[selector.Value] = expires;
                AddSelectorKey(SelectorKeys.Task(SelectorKeys.Hash(selector.Value)));
                _hasTasks = true;
                break;
            case RevocationKind.TaskPhase:
                Raise(_taskPhases, (selector.Value, selector.Phase ?? ""), new Cutoff(entry.RevokedAt.ToUnixTimeMilliseconds(), true, expires));
                AddSelectorKey(SelectorKeys.TaskPhase(SelectorKeys.Hash(selector.Value), selector.Phase ?? ""));
                _hasTaskPhases = true;
                break;
            case RevocationKind.Agent:
                Raise(_agents, selector.Value, new Cutoff(entry.RevokedAt.ToUnixTimeMilliseconds(), true, expires));
                AddSelectorKey(SelectorKeys.Agent(selector.Value));
                _hasAgents = true;
                break;
            case RevocationKind.TrustDomain:
                Raise(_trustDomains, selector.Value, new Cutoff(entry.RevokedAt.ToUnixTimeMilliseconds(), true, expires));
                AddSelectorKey(SelectorKeys.TrustDomain(selector.Value));
                _hasTrustDomains = true;
                break;
            case RevocationKind.AgentIssuedBefore:
                Raise(_agents, selector.Value, new Cutoff(selector.Before!.Value.ToUnixTimeMilliseconds(), false, expires));
                AddSelectorKey(SelectorKeys.Agent(selector.Value));
                _hasAgents = true;
                break;
            case RevocationKind.IssuedBefore:
                var cutoff = new Cutoff(selector.Before!.Value.ToUnixTimeMilliseconds(), false, expires);
                if (cutoff.Covers(_global.Value))
                {
                    _global = new StrongBox<Cutoff>(cutoff);
                }

                break;
        }
    }

    /// <summary>
    /// True when a revocation in force matches the token; <paramref name="kind"/> says which.
    /// A delegated token is also revoked by a revocation of any ancestor token (by id) or of any
    /// agent in its chain (agent, trust domain): one more O(1) lookup per hop.
    /// </summary>
    public bool IsRevoked(in TokenFacts token, out RevocationKind kind)
    {
        // iat has second precision and is floored: a token minted in the same second as a
        // revocation counts as issued before it. Revocation errs on the side of refusing.
        var issuedAt = token.IssuedAt.ToUnixTimeMilliseconds();
        if (IsTokenRevoked(token.TokenId))
        {
            kind = RevocationKind.Token;
            return true;
        }

        var selectors = _selectorFilter;
        var taskHash = _hasTasks || _hasTaskPhases ? SelectorKeys.Hash(token.TaskId) : 0;
        if (_hasTasks && selectors.MayContain(SelectorKeys.Task(taskHash)) && _tasks.ContainsKey(token.TaskId))
        {
            kind = RevocationKind.Task;
            return true;
        }

        if (_global.Value.Matches(issuedAt))
        {
            kind = RevocationKind.IssuedBefore;
            return true;
        }

        if (_hasAgents && selectors.MayContain(SelectorKeys.Agent(token.Subject)) && _agents.TryGetValue(token.Subject, out var agent) && agent.Matches(issuedAt))
        {
            kind = RevocationKind.Agent;
            return true;
        }

        if (_hasTaskPhases && selectors.MayContain(SelectorKeys.TaskPhase(taskHash, token.Phase)) && _taskPhases.TryGetValue((token.TaskId, token.Phase), out var phase) && phase.Matches(issuedAt))
        {
            kind = RevocationKind.TaskPhase;
            return true;
        }

        if (_hasTrustDomains && token.TryGetTrustDomain(out var domain) && selectors.MayContain(SelectorKeys.TrustDomain(domain)) && _trustDomainsBySpan.TryGetValue(domain, out var trust) && trust.Matches(issuedAt))
        {
            kind = RevocationKind.TrustDomain;
            return true;
        }

        if (token.Ancestors is { } ancestors)
        {
            foreach (var ancestor in ancestors)
            {
                if (IsTokenRevoked(ancestor))
                {
                    kind = RevocationKind.Token;
                    return true;
                }
            }
        }

        // A task moving out of the phase the chain started in ends the ancestors of that phase,
        // and with them the tokens exchanged from them in a lower phase.
        if (_hasTaskPhases && token.AncestorPhase is { } ancestorPhase && !string.Equals(ancestorPhase, token.Phase, StringComparison.Ordinal)
            && _taskPhases.TryGetValue((token.TaskId, ancestorPhase), out var chainPhase) && chainPhase.Matches(issuedAt))
        {
            kind = RevocationKind.TaskPhase;
            return true;
        }

        // A delegated token is never issued before its ancestors, so its own iat against an
        // agent's cut-off covers every ancestor that agent held.
        if (token.Actors is { } actors)
        {
            foreach (var actor in actors)
            {
                if (IsAgentRevoked(actor, issuedAt, out kind))
                {
                    return true;
                }
            }
        }

        kind = default;
        return false;
    }

    /// <summary>
    /// Only the task's own revocations: a Task entry, or a TaskPhase entry for <paramref name="phase"/>
    /// covering <paramref name="issuedAt"/>. Node memory asks this, not <see cref="IsRevoked"/>,
    /// because an agent or global cut-off matching first would hide a phase move.
    /// </summary>
    public bool IsTaskOrPhaseRevoked(string taskId, string phase, DateTimeOffset issuedAt)
    {
        if (!_hasTasks && !_hasTaskPhases)
        {
            return false;
        }

        var taskHash = SelectorKeys.Hash(taskId);
        var selectors = _selectorFilter;
        return (_hasTasks && selectors.MayContain(SelectorKeys.Task(taskHash)) && _tasks.ContainsKey(taskId))
            || (_hasTaskPhases && selectors.MayContain(SelectorKeys.TaskPhase(taskHash, phase)) && _taskPhases.TryGetValue((taskId, phase), out var cutoff) && cutoff.Matches(issuedAt.ToUnixTimeMilliseconds()));
    }

    private bool IsTokenRevoked(string tokenId) =>
        TryParseTokenId(tokenId, out var id)
            ? _tokens.Contains(id)
            : _hasOtherTokens && _otherTokens.ContainsKey(tokenId);

    /// <summary>A revocation of the workload, or of its trust domain, covering a token issued at <paramref name="issuedAt"/> (unix ms).</summary>
    private bool IsAgentRevoked(string workloadId, long issuedAt, out RevocationKind kind)
    {
        var selectors = _selectorFilter;
        if (_hasAgents && selectors.MayContain(SelectorKeys.Agent(workloadId)) && _agents.TryGetValue(workloadId, out var agent) && agent.Matches(issuedAt))
        {
            kind = RevocationKind.Agent;
            return true;
        }

        if (_hasTrustDomains && TokenFacts.TryGetTrustDomain(workloadId, out var domain) && selectors.MayContain(SelectorKeys.TrustDomain(domain)) && _trustDomainsBySpan.TryGetValue(domain, out var trust) && trust.Matches(issuedAt))
        {
            kind = RevocationKind.TrustDomain;
            return true;
        }

        kind = default;
        return false;
    }

    /// <summary>Drops entries that can no longer match any unexpired token.</summary>
    public int Prune(DateTimeOffset now)
    {
        var nowMs = now.ToUnixTimeMilliseconds();
        var removed = _tokens.Prune(nowMs) + PruneExpired(_otherTokens, nowMs) + PruneExpired(_tasks, nowMs);
        removed += PruneCutoffs(_taskPhases, nowMs) + PruneCutoffs(_agents, nowMs) + PruneCutoffs(_trustDomains, nowMs);
        if (_global.Value.IsSet && _global.Value.ExpiresAt <= nowMs)
        {
            _global = new StrongBox<Cutoff>(Cutoff.None);
            removed++;
        }

        RefreshFlags();
        if (removed > 0)
        {
            RebuildSelectorFilter(MinSelectorCapacity);
        }

        return removed;
    }

    public void Clear()
    {
        _tokens.Clear();
        _otherTokens.Clear();
        _tasks.Clear();
        _taskPhases.Clear();
        _agents.Clear();
        _trustDomains.Clear();
        _global = new StrongBox<Cutoff>(Cutoff.None);
        RefreshFlags();
        _selectorFilter = new BlockedBloomFilter(MinSelectorCapacity);
        _selectorKeys = 0;
    }

    // Writer only. A full filter is rebuilt twice as large from the maps (which already hold the new key).
    private void AddSelectorKey(ulong key)
    {
        if (++_selectorKeys > _selectorFilter.Capacity)
        {
            RebuildSelectorFilter(_selectorFilter.Capacity * 2);
            return;
        }

        _selectorFilter.Add(key);
    }

    private void RebuildSelectorFilter(int atLeast)
    {
        var keys = _tasks.Count + _taskPhases.Count + _agents.Count + _trustDomains.Count;
        var filter = new BlockedBloomFilter(Math.Max(atLeast, keys * 2));
        foreach (var task in _tasks.Keys)
        {
            filter.Add(SelectorKeys.Task(SelectorKeys.Hash(task)));
        }

        foreach (var (task, phase) in _taskPhases.Keys)
        {
            filter.Add(SelectorKeys.TaskPhase(SelectorKeys.Hash(task), phase));
        }

        foreach (var agent in _agents.Keys)
        {
            filter.Add(SelectorKeys.Agent(agent));
        }

        foreach (var domain in _trustDomains.Keys)
        {
            filter.Add(SelectorKeys.TrustDomain(domain));
        }

        _selectorFilter = filter;
        _selectorKeys = keys;
    }

    private void RefreshFlags()
    {
        _hasOtherTokens = !_otherTokens.IsEmpty;
        _hasTasks = !_tasks.IsEmpty;
        _hasTaskPhases = !_taskPhases.IsEmpty;
        _hasAgents = !_agents.IsEmpty;
        _hasTrustDomains = !_trustDomains.IsEmpty;
    }

    /// <summary>Parses a Broker token id (base64url of 16 bytes).</summary>
    public static bool TryParseTokenId(string tokenId, out UInt128 id)
    {
        Span<byte> bytes = stackalloc byte[16];
        if (tokenId.Length == 22 && Base64Url.TryDecodeFromChars(tokenId, bytes, out var written) && written == 16)
        {
            id = new UInt128(BitConverter.ToUInt64(bytes[..8]), BitConverter.ToUInt64(bytes[8..]));
            return true;
        }

        id = default;
        return false;
    }

    private static void Raise<TKey>(ConcurrentDictionary<TKey, Cutoff> map, TKey key, Cutoff cutoff)
        where TKey : notnull =>
        map.AddOrUpdate(key, cutoff, (_, existing) => cutoff.Covers(existing) ? cutoff : existing.WithExpiry(Math.Max(existing.ExpiresAt, cutoff.ExpiresAt)));

    private static int PruneExpired<TKey>(ConcurrentDictionary<TKey, long> map, long nowMs)
        where TKey : notnull
    {
        var removed = 0;
        foreach (var (key, expires) in map)
        {
            if (expires <= nowMs && map.TryRemove(key, out _))
            {
                removed++;
            }
        }

        return removed;
    }

    private static int PruneCutoffs<TKey>(ConcurrentDictionary<TKey, Cutoff> map, long nowMs)
        where TKey : notnull
    {
        var removed = 0;
        foreach (var (key, cutoff) in map)
        {
            if (cutoff.ExpiresAt <= nowMs && map.TryRemove(key, out _))
            {
                removed++;
            }
        }

        return removed;
    }

    /// <summary>"Tokens issued before (or at) this moment are revoked", until the entry lapses.</summary>
    private readonly record struct Cutoff(long At, bool Inclusive, long ExpiresAt)
    {
        public static readonly Cutoff None = new(long.MinValue, false, long.MinValue);

        public bool IsSet => At != long.MinValue;

        public bool Matches(long issuedAtMs) => IsSet && (Inclusive ? issuedAtMs <= At : issuedAtMs < At);

        public bool Covers(Cutoff other) => !other.IsSet || At > other.At || (At == other.At && Inclusive && !other.Inclusive);

        public Cutoff WithExpiry(long expiresAt) => this with { ExpiresAt = expiresAt };
    }
}
