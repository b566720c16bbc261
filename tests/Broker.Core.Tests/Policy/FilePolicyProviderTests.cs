using Broker.Core.Audit;
using Broker.Core.Policy;
using Microsoft.Extensions.Time.Testing;

namespace Broker.Core.Tests.Policy;

public sealed class FilePolicyProviderTests : IDisposable
{
    private static readonly DateTimeOffset Start = new(2030, 1, 2, 3, 4, 5, TimeSpan.Zero);

    private readonly PolicyTestDirectory _dir = new();
    private readonly RecordingAuditSink _audit = new();
    private readonly RecordingLogger<FilePolicyProvider> _logger = new();
    private readonly List<FilePolicyProvider> _providers = [];

    public FilePolicyProviderTests() => _dir.Touch("td.jwks");

    public void Dispose()
    {
        foreach (var provider in _providers)
        {
            provider.Dispose();
        }

        _dir.Dispose();
    }

    private static string PolicyWithTtl(string ttl) => $$"""
        version: 1
        trust:
          spiffe:
            - trust_domain: example.org
              jwt_bundle_file: td.jwks
        agents:
          - name: a
            match: spiffe://example.org/a
            phases:
              planning: { scopes: [s], audiences: [https://api], max_ttl: {{ttl}} }
        """;

    // Line 10 has the error.
    private static readonly string BadPolicy = PolicyWithTtl("1m").Replace("max_ttl: 1m", "max_ttl: 3h", StringComparison.Ordinal);

    private async Task<FilePolicyProvider> CreateAsync(TimeProvider? time = null, FilePolicyProviderOptions? options = null)
    {
        var provider = new FilePolicyProvider(_dir.PolicyPath, _audit, time ?? new FakeTimeProvider(Start), _logger,
            options ?? new FilePolicyProviderOptions { Watch = false });
        _providers.Add(provider);
        await provider.OpenAsync(CancellationToken.None);
        return provider;
    }

    private static string DigestOf(string path) => PolicyLoader.ComputeDigest(File.ReadAllBytes(path));

    // ---- start -----------------------------------------------------------------------------

    [Fact]
    public async Task Opening_loads_the_policy_and_audits_it_as_loaded()
    {
        _dir.WritePolicy(PolicyWithTtl("1m"));

        var provider = await CreateAsync();

        Assert.Equal(DigestOf(_dir.PolicyPath), provider.Current.Digest);
        Assert.Equal(_dir.PolicyPath, provider.PolicyPath);
        var loaded = Assert.Single(_audit.Events);
        Assert.Equal(AuditEventTypes.PolicyLoaded.Id, loaded.EventId);
        Assert.Equal(AuditEventTypes.PolicyLoaded.Name, loaded.Type);
        Assert.Equal("success", loaded.Outcome);
        Assert.Equal(provider.Current.Digest, loaded.PolicyDigest);
        Assert.Equal(Start, loaded.Time);
        Assert.True(Guid.TryParse(loaded.CorrelationId, out _));
        Assert.Contains(_dir.PolicyPath, loaded.Detail, StringComparison.Ordinal);
        Assert.True(_logger.Has(9000));
    }

    [Fact]
    public async Task An_invalid_policy_at_start_throws_with_every_error_and_is_audited_as_refused()
    {
        _dir.WritePolicy(BadPolicy.Replace("version: 1", "version: 9", StringComparison.Ordinal));

        var ex = await Assert.ThrowsAsync<PolicyLoadException>(() => CreateAsync());

        Assert.Equal(2, ex.Errors.Count);
        Assert.Contains($"{_dir.PolicyPath}:1:10: ", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"{_dir.PolicyPath}:10:", ex.Message, StringComparison.Ordinal);
        var refused = Assert.Single(_audit.Events);
        Assert.Equal(AuditEventTypes.PolicyRefused.Id, refused.EventId);
        Assert.Equal("failure", refused.Outcome);
        Assert.Equal(FilePolicyProvider.PolicyInvalidReason, refused.Reason);
        Assert.True(_logger.Has(9002));
    }

    [Fact]
    public async Task A_missing_policy_file_at_start_throws()
    {
        var ex = await Assert.ThrowsAsync<PolicyLoadException>(() => CreateAsync());

        Assert.Contains("does not exist", Assert.Single(ex.Errors).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_host_constraint_refuses_the_policy_at_start_and_on_every_reload()
    {
        _dir.WritePolicy(PolicyWithTtl("1m"));
        var forbidden = "";
        var options = new FilePolicyProviderOptions
        {
            Watch = false,
            Constraints = p => p.Agents.Any(a => a.Name == forbidden) ? ["BRK9999: agent a is reserved by the host"] : [],
        };
        var provider = await CreateAsync(options: options);
        var good = provider.Current;

        forbidden = "a";
        _dir.WritePolicy(PolicyWithTtl("5m"));
        Assert.False(await provider.ReloadAsync());
        Assert.Same(good, provider.Current);
        var refused = Assert.Single(_audit.OfType(AuditEventTypes.PolicyRefused));
        Assert.Contains("BRK9999", refused.Detail, StringComparison.Ordinal);

        var ex = await Assert.ThrowsAsync<PolicyLoadException>(() => CreateAsync(options: options));
        Assert.Equal("BRK9999: agent a is reserved by the host", Assert.Single(ex.Errors).Message);
    }

    [Fact]
    public async Task A_policy_that_cannot_be_audited_at_start_does_not_start()
    {
        _dir.WritePolicy(PolicyWithTtl("1m"));
        _audit.Fail = true;

        await Assert.ThrowsAsync<IOException>(() => CreateAsync());
    }

    // ---- explicit reload -------------------------------------------------------------------

    [Fact]
    public async Task Reloading_an_unchanged_file_changes_nothing()
    {
        _dir.WritePolicy(PolicyWithTtl("1m"));
        var provider = await CreateAsync();
        var before = provider.Current;

        Assert.False(await provider.ReloadAsync());

        Assert.Same(before, provider.Current);
        Assert.Single(_audit.Events);
    }

    [Fact]
    public async Task Reloading_a_valid_edit_puts_it_in_force_raises_changed_and_audits_it()
    {
        _dir.WritePolicy(PolicyWithTtl("1m"));
        var provider = await CreateAsync();
        var old = provider.Current;
        BrokerPolicy? seen = null;
        provider.Changed += p => seen = p;

        _dir.WritePolicy(PolicyWithTtl("5m"));
        Assert.True(await provider.ReloadAsync());

        Assert.Equal(DigestOf(_dir.PolicyPath), provider.Current.Digest);
        Assert.Equal(TimeSpan.FromMinutes(5), provider.Current.Agents[0].Phases[TaskPhase.Planning].MaxTtl);
        Assert.Same(provider.Current, seen);
        var loaded = _audit.OfType(AuditEventTypes.PolicyLoaded);
        Assert.Equal(2, loaded.Count);
        Assert.Equal(provider.Current.Digest, loaded[1].PolicyDigest);
        Assert.Contains($"previous={old.Digest}", loaded[1].Detail, StringComparison.Ordinal);
        Assert.NotEqual(loaded[0].CorrelationId, loaded[1].CorrelationId);
    }

    [Fact]
    public async Task A_bad_edit_is_refused_logged_and_audited_and_the_good_policy_stays()
    {
        _dir.WritePolicy(PolicyWithTtl("1m"));
        var provider = await CreateAsync();
        var good = provider.Current;
        var changed = false;
        provider.Changed += _ => changed = true;

        _dir.WritePolicy(BadPolicy);
        Assert.False(await provider.ReloadAsync());

        Assert.Same(good, provider.Current);
        Assert.False(changed);
        var refused = Assert.Single(_audit.OfType(AuditEventTypes.PolicyRefused));
        Assert.Equal("failure", refused.Outcome);
        Assert.Equal(FilePolicyProvider.PolicyInvalidReason, refused.Reason);
        Assert.Equal(DigestOf(_dir.PolicyPath), refused.PolicyDigest);
        Assert.Contains($"{_dir.PolicyPath}:10:", refused.Detail, StringComparison.Ordinal);
        var log = Assert.Single(_logger.Entries, e => e.EventId.Id == 9001);
        Assert.Contains(good.Digest, log.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_refusal_detail_is_bounded_to_one_kilobyte()
    {
        _dir.WritePolicy(PolicyWithTtl("1m"));
        var provider = await CreateAsync();
        var typos = string.Concat(Enumerable.Range(0, 60).Select(i => $"\nunknown_key_number_{i}: {new string('x', 40)}"));

        _dir.WritePolicy(PolicyWithTtl("1m") + typos);
        Assert.False(await provider.ReloadAsync());

        var refused = Assert.Single(_audit.OfType(AuditEventTypes.PolicyRefused));
        Assert.True(refused.Detail!.Length <= FilePolicyProvider.MaxAuditDetailLength, $"detail is {refused.Detail.Length} characters");
        Assert.StartsWith("60 error(s): ", refused.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_deleted_policy_file_is_refused_and_the_good_policy_stays()
    {
        _dir.WritePolicy(PolicyWithTtl("1m"));
        var provider = await CreateAsync();
        var good = provider.Current;

        File.Delete(_dir.PolicyPath);

        Assert.False(await provider.ReloadAsync());
        Assert.Same(good, provider.Current);
        Assert.Single(_audit.OfType(AuditEventTypes.PolicyRefused));
    }

    [Fact]
    public async Task A_new_policy_that_cannot_be_audited_is_not_put_in_force_until_it_can()
    {
        _dir.WritePolicy(PolicyWithTtl("1m"));
        var provider = await CreateAsync();
        var good = provider.Current;
        _dir.WritePolicy(PolicyWithTtl("5m"));

        _audit.Fail = true;
        Assert.False(await provider.ReloadAsync());
        Assert.Same(good, provider.Current);
        Assert.True(_logger.Has(9003));

        _audit.Fail = false;
        Assert.True(await provider.ReloadAsync());
        Assert.Equal(DigestOf(_dir.PolicyPath), provider.Current.Digest);
    }

    [Fact]
    public async Task A_failing_change_handler_does_not_stop_the_reload_or_other_handlers()
    {
        _dir.WritePolicy(PolicyWithTtl("1m"));
        var provider = await CreateAsync();
        var secondRan = false;
        provider.Changed += _ => throw new InvalidOperationException("handler bug");
        provider.Changed += _ => secondRan = true;

        _dir.WritePolicy(PolicyWithTtl("5m"));

        Assert.True(await provider.ReloadAsync());
        Assert.True(secondRan);
        Assert.True(_logger.Has(9004));
    }

    [Fact]
    public async Task After_dispose_reloading_does_nothing()
    {
        _dir.WritePolicy(PolicyWithTtl("1m"));
        var provider = await CreateAsync();
        var good = provider.Current;
        provider.Dispose();

        _dir.WritePolicy(PolicyWithTtl("5m"));

        Assert.False(await provider.ReloadAsync());
        Assert.Same(good, provider.Current);
    }

    // ---- watching --------------------------------------------------------------------------

    private Task<FilePolicyProvider> CreateWatchingAsync(TimeProvider time, TimeSpan poll, TimeSpan debounce) =>
        CreateAsync(time, new FilePolicyProviderOptions { Watch = true, PollInterval = poll, Debounce = debounce });

    [Fact]
    public async Task An_edit_is_picked_up_by_the_watcher_without_a_restart()
    {
        _dir.WritePolicy(PolicyWithTtl("1m"));
        var provider = await CreateWatchingAsync(TimeProvider.System, poll: TimeSpan.FromHours(1), debounce: TimeSpan.FromMilliseconds(50));
        var changed = 0;
        provider.Changed += _ => Interlocked.Increment(ref changed);

        _dir.WritePolicy(PolicyWithTtl("5m"));
        var expected = DigestOf(_dir.PolicyPath);

        Assert.True(await PolicyAssert.EventuallyAsync(() => provider.Current.Digest == expected), "the edit was not picked up within 10 s");
        Assert.True(await PolicyAssert.EventuallyAsync(() => Volatile.Read(ref changed) >= 1));
    }

    [Fact]
    public async Task A_file_replaced_by_rename_is_picked_up_and_watching_continues()
    {
        _dir.WritePolicy(PolicyWithTtl("1m"));
        var provider = await CreateWatchingAsync(TimeProvider.System, poll: TimeSpan.FromHours(1), debounce: TimeSpan.FromMilliseconds(50));

        _dir.ReplacePolicyAtomically(PolicyWithTtl("5m"));
        var second = DigestOf(_dir.PolicyPath);
        Assert.True(await PolicyAssert.EventuallyAsync(() => provider.Current.Digest == second), "the replaced file was not picked up within 10 s");

        _dir.ReplacePolicyAtomically(PolicyWithTtl("7m"));
        var third = DigestOf(_dir.PolicyPath);
        Assert.True(await PolicyAssert.EventuallyAsync(() => provider.Current.Digest == third), "a second replace was not picked up within 10 s");
    }

    [Fact]
    public async Task A_bad_edit_seen_by_the_watcher_is_refused_and_a_later_fix_is_picked_up()
    {
        _dir.WritePolicy(PolicyWithTtl("1m"));
        var provider = await CreateWatchingAsync(TimeProvider.System, poll: TimeSpan.FromHours(1), debounce: TimeSpan.FromMilliseconds(50));
        var good = provider.Current;

        _dir.ReplacePolicyAtomically(BadPolicy);
        Assert.True(await PolicyAssert.EventuallyAsync(() => _audit.OfType(AuditEventTypes.PolicyRefused).Count > 0), "the bad edit was not refused within 10 s");
        Assert.Same(good, provider.Current);

        _dir.ReplacePolicyAtomically(PolicyWithTtl("5m"));
        var fixedDigest = DigestOf(_dir.PolicyPath);
        Assert.True(await PolicyAssert.EventuallyAsync(() => provider.Current.Digest == fixedDigest), "the fix was not picked up within 10 s");
    }

    [Fact]
    public async Task Polling_finds_an_edit_when_no_watcher_event_arrives()
    {
        var time = new FakeTimeProvider(Start);
        _dir.WritePolicy(PolicyWithTtl("1m"));
        // Watcher events arm a debounce an hour away, so only the poll can notice the edit.
        var provider = await CreateWatchingAsync(time, poll: TimeSpan.FromSeconds(2), debounce: TimeSpan.FromHours(1));

        _dir.WritePolicy(PolicyWithTtl("5m"));
        var expected = DigestOf(_dir.PolicyPath);
        time.Advance(TimeSpan.FromSeconds(2));

        Assert.True(await PolicyAssert.EventuallyAsync(() => provider.Current.Digest == expected), "the poll did not pick up the edit");
        Assert.Equal(Start.AddSeconds(2), _audit.OfType(AuditEventTypes.PolicyLoaded)[^1].Time);
    }

    [Fact]
    public async Task A_refused_edit_is_audited_once_however_often_it_is_rechecked()
    {
        var time = new FakeTimeProvider(Start);
        _dir.WritePolicy(PolicyWithTtl("1m"));
        var provider = await CreateWatchingAsync(time, poll: TimeSpan.FromSeconds(2), debounce: TimeSpan.FromHours(1));
        var good = provider.Current;

        _dir.WritePolicy(BadPolicy);
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.True(await PolicyAssert.EventuallyAsync(() => _audit.OfType(AuditEventTypes.PolicyRefused).Count == 1));

        for (var i = 0; i < 5; i++)
        {
            time.Advance(TimeSpan.FromSeconds(2));
        }

        // A good edit after the re-checks proves they ran (checks run one at a time, in order).
        _dir.WritePolicy(PolicyWithTtl("5m"));
        var expected = DigestOf(_dir.PolicyPath);
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.True(await PolicyAssert.EventuallyAsync(() => provider.Current.Digest == expected));

        Assert.Single(_audit.OfType(AuditEventTypes.PolicyRefused));
        Assert.NotSame(good, provider.Current);
    }
}
