using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace Broker.Core.Attestation.Internal;

/// <summary>
/// Remembers proofs that passed full validation, keyed by SHA-256 of their exact bytes, so an
/// agent presenting the same JWT for several requests pays for signature checks once. Bounded
/// (least recently used goes first), never serves a proof at or past its <c>exp</c>, and is
/// cleared whenever trust changes. Single-use proofs still reach the replay store, because
/// their <see cref="WorkloadIdentity.ProofId"/> travels with the cached identity.
/// </summary>
internal sealed class ValidatedProofCache
{
    private readonly int _capacity;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly Dictionary<ProofDigest, LinkedListNode<Entry>> _entries = new();
    private readonly LinkedList<Entry> _recency = new();
    private long _generation;
    private long _hits;
    private long _misses;

    public ValidatedProofCache(int capacity, TimeProvider time)
    {
        _capacity = Math.Max(0, capacity);
        _time = time;
    }

    /// <summary>Bumped by every <see cref="Clear"/>, so a caller can tell that trust changed under it.</summary>
    public long Generation => Interlocked.Read(ref _generation);

    internal long Hits => Interlocked.Read(ref _hits);

    internal long Misses => Interlocked.Read(ref _misses);

    internal int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    public static ProofDigest Digest(string token)
    {
        // Proofs are a few KiB at most (MaxProofBytes): their bytes need no array of their own.
        var length = Encoding.UTF8.GetByteCount(token);
        var rented = length <= StackLimit ? null : ArrayPool<byte>.Shared.Rent(length);
        try
        {
            Span<byte> bytes = rented is null ? stackalloc byte[length] : rented;
            var written = Encoding.UTF8.GetBytes(token, bytes);
            Span<byte> hash = stackalloc byte[32];
            SHA256.HashData(bytes[..written], hash);
            return ProofDigest.From(hash);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    private const int StackLimit = 4096;

    public bool TryGet(ProofDigest digest, out WorkloadIdentity identity)
    {
        if (_capacity > 0)
        {
            var now = _time.GetUtcNow();
            lock (_lock)
            {
                if (_entries.TryGetValue(digest, out var node))
                {
                    if (now < node.Value.Identity.ProofExpiresAt)
                    {
                        _recency.Remove(node);
                        _recency.AddFirst(node);
                        identity = node.Value.Identity;
                        Interlocked.Increment(ref _hits);
                        return true;
                    }

                    // Expired: drop it; a fresh validation decides (and refuses past the skew).
                    _entries.Remove(digest);
                    _recency.Remove(node);
                }
            }
        }

        Interlocked.Increment(ref _misses);
        identity = null!;
        return false;
    }

    /// <summary>Whether an unexpired entry exists, without counting a hit or a miss or touching its recency.</summary>
    public bool Holds(ProofDigest digest)
    {
        if (_capacity == 0)
        {
            return false;
        }

        var now = _time.GetUtcNow();
        lock (_lock)
        {
            return _entries.TryGetValue(digest, out var node) && now < node.Value.Identity.ProofExpiresAt;
        }
    }

    /// <summary>
    /// Caches <paramref name="identity"/> unless trust changed since its validation began
    /// (<paramref name="validatedAtGeneration"/> is the <see cref="Generation"/> read before it):
    /// a validation that used a key removed meanwhile must not keep vouching from the cache.
    /// </summary>
    public bool Add(ProofDigest digest, WorkloadIdentity identity, long validatedAtGeneration)
    {
        if (_capacity == 0)
        {
            return false;
        }

        lock (_lock)
        {
            if (Interlocked.Read(ref _generation) != validatedAtGeneration)
            {
                return false;
            }

            if (_entries.TryGetValue(digest, out var existing))
            {
                _recency.Remove(existing);
                _entries.Remove(digest);
            }

            while (_entries.Count >= _capacity && _recency.Last is { } oldest)
            {
                _recency.RemoveLast();
                _entries.Remove(oldest.Value.Digest);
            }

            _entries[digest] = _recency.AddFirst(new Entry(digest, identity));
            return true;
        }
    }

    public void Clear()
    {
        lock (_lock)
        {
            _entries.Clear();
            _recency.Clear();
            Interlocked.Increment(ref _generation);
        }
    }

    private sealed record Entry(ProofDigest Digest, WorkloadIdentity Identity);
}

/// <summary>A SHA-256 digest as a value type: cheap to hash and compare, no string per lookup.</summary>
internal readonly record struct ProofDigest(ulong A, ulong B, ulong C, ulong D)
{
    public static ProofDigest From(ReadOnlySpan<byte> hash) => new(
        BitConverter.ToUInt64(hash[..8]),
        BitConverter.ToUInt64(hash[8..16]),
        BitConverter.ToUInt64(hash[16..24]),
        BitConverter.ToUInt64(hash[24..32]));
}
