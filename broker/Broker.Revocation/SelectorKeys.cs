using System.IO.Hashing;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Broker.Revocation;

/// <summary>
/// The 64-bit keys the index's selector filter holds for task, task-phase, agent and trust-domain
/// entries: one fast hash of the text, mixed with the kind so equal text of different kinds
/// sets different bits. A task's text hash is shared by its task and task-phase keys, so a check
/// hashes the task id once.
/// </summary>
internal static class SelectorKeys
{
    private const ulong TaskKind = 0x9e37_79b9_7f4a_7c15;
    private const ulong TaskPhaseKind = 0xc2b2_ae3d_27d4_eb4f;
    private const ulong AgentKind = 0x1656_67b1_9e37_79f9;
    private const ulong TrustDomainKind = 0x85eb_ca77_c2b2_ae63;

    public static ulong Hash(ReadOnlySpan<char> text) => XxHash3.HashToUInt64(MemoryMarshal.AsBytes(text));

    public static ulong Task(ulong taskHash) => Mix(taskHash ^ TaskKind);

    public static ulong TaskPhase(ulong taskHash, string phase) => Mix(taskHash ^ BitOperations.RotateLeft(Hash(phase), 17) ^ TaskPhaseKind);

    public static ulong Agent(string subject) => Mix(Hash(subject) ^ AgentKind);

    public static ulong TrustDomain(ReadOnlySpan<char> domain) => Mix(Hash(domain) ^ TrustDomainKind);

    // A finalizer that spreads every input bit over the whole word (SplitMix64's).
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xbf58_476d_1ce4_e5b9;
        z = (z ^ (z >> 27)) * 0x94d0_49bb_1331_11eb;
        return z ^ (z >> 31);
    }
}
