using Broker.Core.Attestation;
using Broker.Core.Errors;
using Broker.Core.Policy;
using Broker.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Broker.Core.Tests.Attestation;

/// <summary>
/// One attestor over one test trust domain (JWT bundle from a file) with a fake clock.
/// Time starts at the real "now" truncated to whole seconds, so JWT NumericDates land exactly.
/// </summary>
internal sealed class AttestationHarness : IDisposable
{
    public const string Audience = "spiffe://broker.test/broker";

    public AttestationHarness(bool singleUse = false, Action<AttestationOptions>? configure = null, TimeSpan? refreshInterval = null, FakeTimeProvider? time = null)
    {
        Time = time ?? new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
        Domain = new TestTrustDomain("example.org");
        DomainPolicy = new SpiffeTrustDomainPolicy("example.org", Domain.WriteJwksFile(), null, null, refreshInterval ?? TimeSpan.FromMinutes(5), singleUse);
        Policy = new StaticPolicyProvider([DomainPolicy]);
        Options = new AttestationOptions { Audience = Audience };
        configure?.Invoke(Options);
        Attestor = new WorkloadAttestor(Policy, Microsoft.Extensions.Options.Options.Create(Options), Time, Http);
    }

    public FakeTimeProvider Time { get; }

    public TestTrustDomain Domain { get; }

    public SpiffeTrustDomainPolicy DomainPolicy { get; }

    public StaticPolicyProvider Policy { get; }

    public AttestationOptions Options { get; }

    public HttpClient Http { get; } = new();

    public WorkloadAttestor Attestor { get; }

    public DateTimeOffset Now => Time.GetUtcNow();

    public string WorkloadId => Domain.SpiffeId();

    /// <summary>A valid JWT-SVID for <see cref="WorkloadId"/> minted now, then edited.</summary>
    public string Svid(TimeSpan? lifetime = null, Action<System.Text.Json.Nodes.JsonObject>? claims = null, Action<System.Text.Json.Nodes.JsonObject>? header = null) =>
        Domain.MintSvid(WorkloadId, Audience, Now, lifetime, claims, header);

    public Task<WorkloadIdentity> AttestJwtAsync(string token) =>
        Attestor.AttestAsync(new JwtSvidEvidence(token), CancellationToken.None).AsTask();

    public Task<BrokerException> RefusedJwtAsync(string token, string reason) =>
        Refusals.ExpectAsync(reason, () => AttestJwtAsync(token));

    public void Dispose()
    {
        Attestor.Dispose();
        Http.Dispose();
        Domain.Dispose();
    }
}

/// <summary>
/// A fake clock that runs an action once, at the n-th reading after <see cref="AtRead"/>: the
/// moment inside a validation at which the test makes something else happen concurrently.
/// </summary>
internal sealed class InterruptingClock() : FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()))
{
    private Action? _action;
    private int _readsLeft;

    public void AtRead(int n, Action action)
    {
        _readsLeft = n;
        _action = action;
    }

    public override DateTimeOffset GetUtcNow()
    {
        if (_action is { } action && --_readsLeft == 0)
        {
            _action = null;
            action();
        }

        return base.GetUtcNow();
    }
}

internal static class Refusals
{
    /// <summary>Asserts a refusal with exactly <paramref name="reason"/>, and that its message carries no key material.</summary>
    public static async Task<BrokerException> ExpectAsync(string reason, Func<Task> act)
    {
        var refusal = await Assert.ThrowsAsync<BrokerException>(act);
        Assert.Equal(reason, refusal.Reason);
        Assert.DoesNotContain("BEGIN", refusal.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("\"x\":", refusal.Message, StringComparison.Ordinal);
        return refusal;
    }
}
