using System.Diagnostics;
using Broker.Bench.V1;
using Broker.Testing;
using Broker.V1;

namespace Broker.Benchmarks;

/// <summary>
/// The cold path's proofs (<c>--no-proof-cache</c>): a fresh JWT-SVID for every call, each with
/// its own <c>jti</c>, minted before any window opens so minting is not measured. An entry
/// carries its agent's task with it (a task belongs to the agent that opened it), so any caller
/// may take any entry. Entries are taken in order; a run that takes more than the pool holds
/// wraps around, and <see cref="Reused"/> says how many calls presented a proof already used in
/// that run (the node keeps no validated proofs in this mode, so a reused one still costs a full
/// verification; the count is there so the report can say so).
/// </summary>
internal sealed class ColdProofPool
{
    private readonly (IssueCredentialRequest Issue, SignRequest Sign)[] _entries;
    private long _next = -1;

    private ColdProofPool((IssueCredentialRequest, SignRequest)[] entries) => _entries = entries;

    public int Count => _entries.Length;

    /// <summary>Calls since the last <see cref="Reset"/> that got a proof already handed out.</summary>
    public long Reused => Math.Max(0, Interlocked.Read(ref _next) + 1 - _entries.Length);

    /// <summary>Starts handing out from the first proof again (before each measured run).</summary>
    public void Reset() => Interlocked.Exchange(ref _next, -1);

    public IssueCredentialRequest NextIssue() => _entries[Index()].Issue;

    public SignRequest NextSign() => _entries[Index()].Sign;

    /// <summary>
    /// Mints <paramref name="count"/> proofs round-robin over the agents of <paramref name="issueTemplates"/>
    /// (one request per agent, index i for agent i, with its matching sign request).
    /// </summary>
    public static ColdProofPool Mint(TestTrustDomain trust, IReadOnlyList<IssueCredentialRequest> issueTemplates, IReadOnlyList<SignRequest> signTemplates, int count, TimeSpan lifetime)
    {
        var clock = Stopwatch.StartNew();
        var entries = new (IssueCredentialRequest, SignRequest)[count];
        var now = DateTimeOffset.UtcNow;
        for (var i = 0; i < count; i++)
        {
            var agent = i % issueTemplates.Count;
            var jti = $"cold-{i}-{Guid.NewGuid():N}";
            var svid = trust.MintSvid(signTemplates[agent].Subject, BenchmarkBroker.Audience, now, lifetime, claims => claims["jti"] = jti);
            var issue = issueTemplates[agent].Clone();
            issue.Attestation = new AttestationProof { JwtSvid = svid };
            var sign = signTemplates[agent].Clone();
            sign.Attestation = svid;
            entries[i] = (issue, sign);
        }

        Console.WriteLine($"Minted {count:N0} JWT-SVIDs for the cold path in {clock.Elapsed.TotalSeconds:F1} s (not measured).");
        return new ColdProofPool(entries);
    }

    private long Index() => Interlocked.Increment(ref _next) % _entries.Length;
}
