using Broker.Core.Attestation;
using Broker.Core.Policy;
using Broker.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Broker.Core.Tests.Attestation;

public sealed class AttestationRegistrationTests
{
    [Fact]
    public async Task AddBrokerAttestation_registers_an_attestor_on_the_registered_clock()
    {
        using var domain = new TestTrustDomain("example.org");
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(time);
        services.AddSingleton<IPolicyProvider>(new StaticPolicyProvider([new SpiffeTrustDomainPolicy("example.org", domain.WriteJwksFile(), null, null, TimeSpan.FromMinutes(5), false)]));
        services.AddBrokerAttestation(o => o.Audience = AttestationHarness.Audience);
        await using var provider = services.BuildServiceProvider();

        var attestor = provider.GetRequiredService<IWorkloadAttestor>();
        var token = domain.MintSvid(domain.SpiffeId(), AttestationHarness.Audience, time.GetUtcNow());
        var identity = await attestor.AttestAsync(new JwtSvidEvidence(token), CancellationToken.None);

        Assert.IsType<WorkloadAttestor>(attestor);
        Assert.Equal(domain.SpiffeId(), identity.WorkloadId);
    }

    [Fact]
    public void A_replacement_attestor_registered_first_is_kept()
    {
        var services = new ServiceCollection();
        var replacement = new ReplacementAttestor();
        services.AddSingleton<IWorkloadAttestor>(replacement);

        services.AddBrokerAttestation(o => o.Audience = "x");

        using var provider = services.BuildServiceProvider();
        Assert.Same(replacement, provider.GetRequiredService<IWorkloadAttestor>());
    }

    [Fact]
    public void Missing_audience_is_refused_at_start()
    {
        var services = new ServiceCollection();
        services.AddSingleton<IPolicyProvider>(new StaticPolicyProvider());
        services.AddBrokerAttestation();
        using var provider = services.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IWorkloadAttestor>());
        Assert.Contains("Audience", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(600)]
    public void Clock_skew_outside_zero_to_five_minutes_is_refused(int seconds)
    {
        var result = new AttestationOptionsValidator().Validate(null, new AttestationOptions { Audience = "x", ClockSkew = TimeSpan.FromSeconds(seconds) });

        Assert.True(result.Failed);
    }

    private sealed class ReplacementAttestor : IWorkloadAttestor
    {
        public ValueTask<WorkloadIdentity> AttestAsync(AttestationEvidence evidence, CancellationToken cancellationToken) =>
            throw new NotSupportedException();
    }
}
