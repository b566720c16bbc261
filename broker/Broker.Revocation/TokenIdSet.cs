using System.Numerics;

namespace Broker.Revocation;

/// <summary>
/// Revoked Broker token ids (128-bit) in one flat open-addressing table: a lookup touches one
/// cache line in the common case, where a node-based dictionary costs several dependent misses
/// at a million entries. At that size the table is far larger than the cache, so a
/// <see cref="BlockedBloomFilter"/> in front of it answers for live tokens (nearly every check)
/// from cache; only revoked ids and rare false maybes reach the table. One writer; readers never
/// lock. The writer sets an id's filter bits, then fills its slot's expiry and high half before
/// the low half (which marks it used), so a reader sees either nothing or the whole entry.
/// Growth and pruning build a new table and filter and swap both in at once.
/// </summary>
internal sealed class TokenIdSet
{
    private const int MinCapacity = 1024;

    private volatile Table _table = new(MinCapacity);
    private int _count;

    public int Count => Volatile.Read(ref _count);

    public bool Contains(UInt128 id)
    {
        var table = _table;
        var (lo, hi) = Halves(id);
        if (!table.Filter.MayContain(hi))
        {
            return false;
        }

        var slots = table.Slots;
        var mask = slots.Length - 1;
        for (var i = Index(lo, mask); ; i = (i + 1) & mask)
        {
            var slotLo = Volatile.Read(ref slots[i].Lo);
            if (slotLo == 0)
            {
                return false;
            }

            if (slotLo == lo && slots[i].Hi == hi)
            {
                return true;
            }
        }
    }

    /// <summary>Adds or extends an entry. Writer only.</summary>
    public void Add(UInt128 id, long expiresAtMs)
    {
        if ((_count + 1) * 4 > _table.Slots.Length * 3)
        {
            _table = Rebuild(_table, _table.Slots.Length * 2, long.MinValue);
        }

        if (Insert(_table, id, expiresAtMs))
        {
            Interlocked.Increment(ref _count);
        }
    }

    /// <summary>Drops entries expired at <paramref name="nowMs"/>; returns how many. Writer only.</summary>
    public int Prune(long nowMs)
    {
        var before = _count;
        var live = 0;
        foreach (ref readonly var slot in _table.Slots.AsSpan())
        {
            if (slot.Lo != 0 && slot.ExpiresAt > nowMs)
            {
                live++;
            }
        }

        if (live == before)
        {
            return 0;
        }

        _table = Rebuild(_table, CapacityFor(live), nowMs);
        Volatile.Write(ref _count, live);
        return before - live;
    }

    public void Clear()
    {
        _table = new Table(MinCapacity);
        Volatile.Write(ref _count, 0);
    }

    private static bool Insert(Table table, UInt128 id, long expiresAtMs)
    {
        var (lo, hi) = Halves(id);
        table.Filter.Add(hi);
        var slots = table.Slots;
        var mask = slots.Length - 1;
        for (var i = Index(lo, mask); ; i = (i + 1) & mask)
        {
            if (slots[i].Lo == 0)
            {
                slots[i].ExpiresAt = expiresAtMs;
                slots[i].Hi = hi;
                Volatile.Write(ref slots[i].Lo, lo);
                return true;
            }

            if (slots[i].Lo == lo && slots[i].Hi == hi)
            {
                slots[i].ExpiresAt = Math.Max(slots[i].ExpiresAt, expiresAtMs);
                return false;
            }
        }
    }

    private static Table Rebuild(Table old, int capacity, long nowMs)
    {
        var table = new Table(capacity);
        foreach (ref readonly var slot in old.Slots.AsSpan())
        {
            if (slot.Lo != 0 && slot.ExpiresAt > nowMs)
            {
                Insert(table, new UInt128(slot.Hi, slot.Lo), slot.ExpiresAt);
            }
        }

        return table;
    }

    private static int CapacityFor(int count) => Math.Max(MinCapacity, (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(1, count * 2)));

    // The ids are random, so their low bits are already a good hash.
    private static int Index(ulong lo, int mask) => (int)(lo & (ulong)mask);

    // A zero low half marks an empty slot, so an id whose low half is zero (1 in 2^64 for minted
    // ids) is stored under low half 1 with its high half inverted and tagged.
    private static (ulong Lo, ulong Hi) Halves(UInt128 id)
    {
        var lo = (ulong)id;
        var hi = (ulong)(id >> 64);
        return lo == 0 ? (1, ~hi ^ 0x8000_0000_0000_0000) : (lo, hi);
    }

    /// <summary>The slots and the filter over them, swapped in together.</summary>
    private sealed class Table(int capacity)
    {
        public Slot[] Slots { get; } = new Slot[capacity];

        // Sized for the most ids the table holds before it grows (three quarters of its slots).
        public BlockedBloomFilter Filter { get; } = new(capacity / 4 * 3);
    }

    private struct Slot
    {
        public ulong Lo;
        public ulong Hi;
        public long ExpiresAt;
    }
}
