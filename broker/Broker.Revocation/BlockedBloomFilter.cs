using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Broker.Revocation;

/// <summary>
/// A split-block Bloom filter over 64-bit hashes: a key sets one bit in each of the eight 64-bit
/// words of one 64-byte block, so a check reads one cache line, and the whole filter (about 12
/// bits a key) stays in cache where the table behind it cannot. It answers "certainly absent" or
/// "maybe present"; the caller confirms a maybe in the exact table. One writer; readers never
/// lock. Keys cannot be removed: the owner builds a new filter when it prunes.
/// </summary>
internal sealed class BlockedBloomFilter
{
    private const int WordsPerBlock = 8;
    private const int BitsPerKey = 12;

    // Odd multipliers that spread one 32-bit hash into eight independent bit positions.
    private static readonly uint[] Salts = [0x47b6137bU, 0x44974d91U, 0x8824ad5bU, 0xa2b7289dU, 0x705495c7U, 0x2df1424bU, 0x9efc4947U, 0x5c6bfb31U];

    private readonly ulong[] _words;
    private readonly int _offset;
    private readonly ulong _blocks;

    /// <param name="capacity">How many keys the filter is sized for; more still work, with more false maybes.</param>
    public BlockedBloomFilter(int capacity)
    {
        Capacity = Math.Max(capacity, 64);
        _blocks = BitOperations.RoundUpToPowerOf2((uint)(((long)Capacity * BitsPerKey + 511) / 512));

        // Pinned, so the block boundaries found here stay on cache-line boundaries for good.
        _words = GC.AllocateArray<ulong>(checked((int)_blocks * WordsPerBlock + WordsPerBlock), pinned: true);
        var misalignment = (int)(Marshal.UnsafeAddrOfPinnedArrayElement(_words, 0) % 64);
        _offset = misalignment == 0 ? 0 : (64 - misalignment) / sizeof(ulong);
    }

    public int Capacity { get; }

    public void Add(ulong hash)
    {
        var block = _offset + BlockOf(hash);
        var low = (uint)hash;
        for (var w = 0; w < WordsPerBlock; w++)
        {
            Interlocked.Or(ref _words[block + w], Bit(low, w));
        }
    }

    public bool MayContain(ulong hash)
    {
        ref var block = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_words), _offset + BlockOf(hash));
        var low = (uint)hash;
        for (var w = 0; w < WordsPerBlock; w++)
        {
            if ((Volatile.Read(ref Unsafe.Add(ref block, w)) & Bit(low, w)) == 0)
            {
                return false;
            }
        }

        return true;
    }

    // The high half picks the block (blocks is a power of two), the low half the bits within it.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int BlockOf(ulong hash) => (int)((hash >> 32) & (_blocks - 1)) * WordsPerBlock;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Bit(uint low, int word) => 1UL << (int)((low * Salts[word]) >> 26);
}
