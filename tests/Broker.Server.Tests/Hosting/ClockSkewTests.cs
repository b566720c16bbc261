using Broker.Core.Attestation;
using Broker.Core.Revocation;
using Broker.Core.Risk;
using Broker.Core.Ssf;
using Broker.Server.Hosting;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Broker.Server.Tests.Hosting;

/// <summary>One clock-skew setting reaches every time check; per-component skews are refused.</summary>
public sealed class ClockSkewTests : IDisposable
{
    private readonly TestTrustDomain _trust = new("example.org");
    private readonly TestPki _pki = TestPki.Create("example.org");
    private readonly string _policyPath;

    public ClockSkewTests()
    {
        _policyPath = Path.Combine(_trust.Directory, "policy.yaml");
        File.WriteAllText(_policyPath, BrokerScenario.Policy(_trust.WriteJwksFile(), _pki.WriteRootBundle()));
    }

    public void Dispose()
    {
        _trust.Dispose();
        _pki.Dispose();
    }

    [Fact]
    public async Task The_one_skew_reaches_attestation_sets_signals_revocation_operators_and_key_retirement()
    {
        await using var host = await StartAsync(new() { ["Broker:ClockSkew"] = "00:00:07" });

        var skew = TimeSpan.FromSeconds(7);
        var services = host.Services;
        Assert.Equal(skew, services.GetRequiredService<IOptions<AttestationOptions>>().Value.ClockSkew);
        Assert.Equal(skew, services.GetRequiredService<SecurityEventReader>().ClockSkew);
        Assert.Equal(skew, services.GetRequiredService<IOptions<RiskOptions>>().Value.ClockSkew);
        Assert.Equal(skew, services.GetRequiredService<IOptions<RevocationOptions>>().Value.ClockSkew);
        var operators = services.GetRequiredService<IOptionsMonitor<JwtBearerOptions>>().Get(Broker.Server.Hosting.OperatorRoles.Scheme);
        Assert.Equal(skew, operators.TokenValidationParameters.ClockSkew);
        Assert.Equal(TimeSpan.FromHours(1) + skew, services.GetRequiredService<Broker.Core.Signing.SigningKeyRing>().RetainAfterRetirement);
    }

    [Theory]
    [InlineData("Broker:Revocation:ClockSkew")]
    [InlineData("Broker:Attestation:ClockSkew")]
    public async Task A_per_component_skew_is_refused_at_start(string key)
    {
        var refused = await Assert.ThrowsAsync<BrokerStartupException>(() => StartAsync(new() { [key] = "00:02:00" }));

        var problem = Assert.Single(refused.Problems, p => p.StartsWith("BRK1081", StringComparison.Ordinal));
        Assert.Contains(key, problem, StringComparison.Ordinal);
        Assert.Contains("Broker:ClockSkew", problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("-00:00:01")]
    [InlineData("00:06:00")]
    public async Task A_skew_out_of_range_is_refused_at_start(string skew)
    {
        var refused = await Assert.ThrowsAsync<BrokerStartupException>(() => StartAsync(new() { ["Broker:ClockSkew"] = skew }));

        Assert.Contains(refused.Problems, p => p.StartsWith("BRK1080", StringComparison.Ordinal));
    }

    private Task<BrokerTestHost> StartAsync(Dictionary<string, string?> settings) =>
        BrokerTestHost.StartAsync(new BrokerTestHostOptions { PolicyPath = _policyPath, Settings = settings });
}
