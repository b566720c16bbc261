using System.Security.Cryptography;
using Broker.Revocation;

namespace Broker.Core.Tests.Revocation;

public sealed class RevocationIndexTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 26, 10, 0, 0, TimeSpan.Zero);

    private static string NewTokenId() => System.Buffers.Text.Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(16));

    private static RevocationEntry Entry(RevocationSelector selector, DateTimeOffset? at = null, TimeSpan? life = null) =>
        new("1", selector, "operator:test", "test", at ?? Now, (at ?? Now) + (life ?? TimeSpan.FromHours(1)));

    private static TokenFacts Token(string? id = null, string subject = "spiffe://example.org/agents/a", string task = "t1", string phase = "planning", DateTimeOffset? iat = null) =>
        new(id ?? NewTokenId(), subject, task, phase, iat ?? Now.AddSeconds(-10));

    [Fact]
    public void Revoked_token_ids_are_found_and_others_are_not_across_table_growth()
    {
        var index = new RevocationIndex();
        var revoked = Enumerable.Range(0, 5000).Select(i => NewTokenId()).ToList();
        foreach (var id in revoked)
        {
            index.Apply(Entry(RevocationSelector.ForToken(id)));
        }

        Assert.All(revoked, id => Assert.True(index.IsRevoked(Token(id), out var kind) && kind == RevocationKind.Token));
        Assert.All(Enumerable.Range(0, 5000), i => Assert.False(index.IsRevoked(Token(), out _)));
        Assert.Equal(5000, index.Count);
    }

    [Fact]
    public void A_delegated_token_is_revoked_with_any_ancestor_token_or_any_agent_in_its_chain()
    {
        var root = NewTokenId();
        var parent = NewTokenId();
        string[] actors = ["spiffe://example.org/sub/b", "spiffe://other.org/sub/a"];
        TokenFacts Delegated() => Token(subject: "spiffe://example.org/agents/owner") with { Actors = actors, Ancestors = [parent, root] };

        foreach (var (selector, kind) in new[]
        {
            (RevocationSelector.ForToken(root), RevocationKind.Token),
            (RevocationSelector.ForToken(parent), RevocationKind.Token),
            (RevocationSelector.ForAgent(actors[0]), RevocationKind.Agent),
            (RevocationSelector.ForAgent(actors[1]), RevocationKind.Agent),
            (RevocationSelector.ForTrustDomain("other.org"), RevocationKind.TrustDomain),
        })
        {
            var index = new RevocationIndex();
            Assert.False(index.IsRevoked(Delegated(), out _));
            index.Apply(Entry(selector));
            Assert.True(index.IsRevoked(Delegated(), out var found), selector.ToString());
            Assert.Equal(kind, found);

            // The same revocation leaves a direct token of the same owner and task alone.
            Assert.False(index.IsRevoked(Token(subject: "spiffe://example.org/agents/owner"), out _), selector.ToString());
        }
    }

    [Fact]
    public void A_phase_revocation_of_the_phase_its_chain_started_in_reaches_a_lower_phase_delegated_token()
    {
        var index = new RevocationIndex();
        var delegated = Token(phase: "planning") with { Actors = ["spiffe://example.org/sub/a"], Ancestors = [NewTokenId()], AncestorPhase = "execution" };
        Assert.False(index.IsRevoked(delegated, out _));

        index.Apply(Entry(RevocationSelector.ForTaskPhase("t1", "execution")));

        Assert.True(index.IsRevoked(delegated, out var kind));
        Assert.Equal(RevocationKind.TaskPhase, kind);
        Assert.False(index.IsRevoked(Token(phase: "planning"), out _));
    }

    [Theory]
    [InlineData(null, false, true)]
    [InlineData("execution", true, true)]
    [InlineData(null, true, false)]
    [InlineData("execution", false, false)]
    public void Ancestor_phase_is_required_on_delegated_tokens_and_refused_on_direct_ones(string? value, bool delegated, bool valid) =>
        Assert.Equal(valid, DelegationClaims.TryReadAncestorPhase(value, delegated, out _));

    [Fact]
    public void An_agent_revocation_does_not_reach_a_delegated_token_issued_after_it()
    {
        var index = new RevocationIndex();
        index.Apply(Entry(RevocationSelector.ForAgent("spiffe://example.org/sub/a")));

        var later = Token(subject: "spiffe://example.org/agents/owner", iat: Now.AddSeconds(1)) with { Actors = ["spiffe://example.org/sub/a"], Ancestors = [NewTokenId()] };

        Assert.False(index.IsRevoked(later, out _));
    }

    [Theory]
    [InlineData(null, new string[0], true, 0)]
    [InlineData("{\"sub\":\"b\"}", new[] { "p" }, true, 1)]
    [InlineData("{\"sub\":\"c\",\"act\":{\"sub\":\"b\"}}", new[] { "p", "r" }, true, 2)]
    [InlineData("{\"sub\":\"c\",\"act\":{\"sub\":\"b\"}}", new[] { "p" }, false, 0)]
    [InlineData("{\"sub\":\"b\"}", new string[0], false, 0)]
    [InlineData(null, new[] { "p" }, false, 0)]
    [InlineData("{\"act\":{\"sub\":\"b\"}}", new[] { "p" }, false, 0)]
    [InlineData("[1]", new[] { "p" }, false, 0)]
    [InlineData("{\"sub\":7}", new[] { "p" }, false, 0)]
    [InlineData("{\"sub\":\"b\"", new[] { "p" }, false, 0)]
    public void A_delegation_chain_is_read_only_when_its_actors_and_ancestors_agree(string? act, string[] ancestors, bool valid, int depth)
    {
        Assert.Equal(valid, DelegationClaims.TryRead(act, ancestors, out var actors, out var ids));
        Assert.Equal(depth, actors?.Length ?? 0);
        Assert.Equal(depth, ids?.Length ?? 0);
    }

    [Fact]
    public void A_chain_deeper_than_the_limit_is_not_read()
    {
        var act = "{\"sub\":\"x\"}";
        for (var i = 0; i < DelegationClaims.MaxDepth; i++)
        {
            act = "{\"sub\":\"x\",\"act\":" + act + "}";
        }

        Assert.False(DelegationClaims.TryRead(act, Enumerable.Repeat("p", DelegationClaims.MaxDepth + 1).ToArray(), out _, out _));
    }

    [Fact]
    public void Revoking_the_same_token_twice_keeps_one_entry()
    {
        var index = new RevocationIndex();
        var id = NewTokenId();

        index.Apply(Entry(RevocationSelector.ForToken(id)));
        index.Apply(Entry(RevocationSelector.ForToken(id)));

        Assert.Equal(1, index.Count);
    }

    [Fact]
    public void Prune_drops_only_lapsed_entries()
    {
        var index = new RevocationIndex();
        var lapsing = NewTokenId();
        var lasting = NewTokenId();
        index.Apply(Entry(RevocationSelector.ForToken(lapsing), life: TimeSpan.FromMinutes(1)));
        index.Apply(Entry(RevocationSelector.ForToken(lasting), life: TimeSpan.FromHours(2)));
        index.Apply(Entry(RevocationSelector.ForAgent("spiffe://example.org/agents/gone"), life: TimeSpan.FromMinutes(1)));

        var removed = index.Prune(Now.AddMinutes(30));

        Assert.Equal(2, removed);
        Assert.False(index.IsRevoked(Token(lapsing), out _));
        Assert.True(index.IsRevoked(Token(lasting), out _));
        Assert.False(index.IsRevoked(Token(subject: "spiffe://example.org/agents/gone"), out _));
    }

    [Fact]
    public void Agent_revocation_covers_tokens_issued_up_to_it_and_not_after()
    {
        var index = new RevocationIndex();
        index.Apply(Entry(RevocationSelector.ForAgent("spiffe://example.org/agents/a")));

        Assert.True(index.IsRevoked(Token(iat: Now), out var kind));
        Assert.Equal(RevocationKind.Agent, kind);
        Assert.False(index.IsRevoked(Token(iat: Now.AddSeconds(1)), out _));
        Assert.False(index.IsRevoked(Token(subject: "spiffe://example.org/agents/b"), out _));
    }

    [Fact]
    public void Issued_before_is_exclusive_and_the_latest_cutoff_wins()
    {
        var index = new RevocationIndex();
        index.Apply(Entry(RevocationSelector.IssuedBeforeTime(Now)));
        index.Apply(Entry(RevocationSelector.IssuedBeforeTime(Now.AddMinutes(-5))));

        Assert.True(index.IsRevoked(Token(iat: Now.AddSeconds(-1)), out var kind));
        Assert.Equal(RevocationKind.IssuedBefore, kind);
        Assert.False(index.IsRevoked(Token(iat: Now), out _));
    }

    [Fact]
    public void Task_phase_and_trust_domain_selectors_match_only_what_they_name()
    {
        var index = new RevocationIndex();
        index.Apply(Entry(RevocationSelector.ForTaskPhase("t1", "planning")));
        index.Apply(Entry(RevocationSelector.ForTrustDomain("evil.org")));
        index.Apply(Entry(RevocationSelector.ForTask("t9")));

        Assert.True(index.IsRevoked(Token(task: "t1", phase: "planning"), out _));
        Assert.False(index.IsRevoked(Token(task: "t1", phase: "execution"), out _));
        Assert.True(index.IsRevoked(Token(subject: "spiffe://evil.org/agents/x", task: "t2"), out var domain));
        Assert.Equal(RevocationKind.TrustDomain, domain);
        Assert.False(index.IsRevoked(Token(subject: "spiffe://evil.org.example.org/agents/x", task: "t2"), out _));
        Assert.True(index.IsRevoked(Token(task: "t9", iat: Now.AddHours(1)), out var task));
        Assert.Equal(RevocationKind.Task, task);
    }

    [Fact]
    public void Clear_forgets_everything()
    {
        var index = new RevocationIndex();
        var id = NewTokenId();
        index.Apply(Entry(RevocationSelector.ForToken(id)));
        index.Apply(Entry(RevocationSelector.IssuedBeforeTime(Now)));

        index.Clear();

        Assert.Equal(0, index.Count);
        Assert.False(index.IsRevoked(Token(id), out _));
    }

    /// <summary>
    /// Thousands of task, phase, agent and trust-domain entries grow the filter in front of those
    /// maps several times, and pruning rebuilds it: no revoked key may ever be filtered out, and
    /// the near misses stay live.
    /// </summary>
    [Fact]
    public void Selector_entries_are_found_across_filter_growth_and_pruning_and_near_misses_are_not()
    {
        var index = new RevocationIndex();
        const int each = 3000;
        for (var i = 0; i < each; i++)
        {
            // Odd entries lapse after a minute, even ones after an hour.
            var life = i % 2 == 0 ? TimeSpan.FromHours(1) : TimeSpan.FromMinutes(1);
            index.Apply(Entry(RevocationSelector.ForTask($"task-{i}"), life: life));
            index.Apply(Entry(RevocationSelector.ForTaskPhase($"phased-{i}", "execution"), life: life));
            index.Apply(Entry(RevocationSelector.ForAgent($"spiffe://example.org/agents/a{i}"), life: life));
            index.Apply(Entry(RevocationSelector.ForTrustDomain($"d{i}.example"), life: life));
        }

        void AssertRevoked(int i)
        {
            Assert.True(index.IsRevoked(Token(task: $"task-{i}", subject: "spiffe://example.org/agents/live"), out var task) && task == RevocationKind.Task, $"task-{i}");
            Assert.True(index.IsRevoked(Token(task: $"phased-{i}", phase: "execution", subject: "spiffe://example.org/agents/live"), out var phase) && phase == RevocationKind.TaskPhase, $"phased-{i}");
            Assert.True(index.IsRevoked(Token(subject: $"spiffe://example.org/agents/a{i}", task: "live"), out var agent) && agent == RevocationKind.Agent, $"a{i}");
            Assert.True(index.IsRevoked(Token(subject: $"spiffe://d{i}.example/agents/x", task: "live"), out var domain) && domain == RevocationKind.TrustDomain, $"d{i}");
        }

        void AssertLive(int i)
        {
            Assert.False(index.IsRevoked(Token(task: $"task-{i}", subject: "spiffe://example.org/agents/live"), out _), $"task-{i} after it lapsed");
            Assert.False(index.IsRevoked(Token(subject: $"spiffe://example.org/agents/a{i}", task: "live"), out _), $"a{i} after it lapsed");
        }

        for (var i = 0; i < each; i++)
        {
            AssertRevoked(i);
            Assert.False(index.IsRevoked(Token(task: $"phased-{i}", phase: "planning", subject: "spiffe://example.org/agents/live"), out _), "another phase of a phase-revoked task");
            Assert.False(index.IsRevoked(Token(task: $"task-{i}x", subject: $"spiffe://example.org/agents/a{i}x"), out _), "near-miss task and agent");
        }

        Assert.True(index.Prune(Now.AddMinutes(2)) >= 4 * (each / 2));

        for (var i = 0; i < each; i++)
        {
            if (i % 2 == 0)
            {
                AssertRevoked(i);
            }
            else
            {
                AssertLive(i);
            }
        }
    }
}
