using Broker.Core.Issuance;
using Broker.Core.Revocation;
using Broker.Server.Hosting;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Broker.Server.Tests.Hosting;

/// <summary>One setting bounds every token; nothing that must outlive a token may be shorter.</summary>
public sealed class TokenLifetimeTests : IDisposable
{
    private readonly TestTrustDomain _trust = new("example.org");
    private readonly TestPki _pki = TestPki.Create("example.org");
    private readonly string _policyPath;

    public TokenLifetimeTests()
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
    public async Task Start_up_refuses_revocations_kept_shorter_than_tokens_live()
    {
        // Before: issuance capped tokens at one hour while revocation entries and the log's trim
        // used these five minutes, so a revoked token became valid again after five minutes.
        var refused = await Assert.ThrowsAsync<BrokerStartupException>(() => StartAsync(new()
        {
            ["Broker:Revocation:MaxTokenLifetime"] = "00:05:00",
        }));

        var problem = Assert.Single(refused.Problems, p => p.StartsWith("BRK1051", StringComparison.Ordinal));
        Assert.Contains("Broker:Revocation:MaxTokenLifetime", problem, StringComparison.Ordinal);
        Assert.Contains("Broker:MaxTokenLifetime", problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("00:00:00")]
    [InlineData("2.00:00:00")]
    public async Task Start_up_refuses_a_token_lifetime_out_of_range(string lifetime)
    {
        var refused = await Assert.ThrowsAsync<BrokerStartupException>(() => StartAsync(new() { ["Broker:MaxTokenLifetime"] = lifetime }));

        Assert.Contains(refused.Problems, p => p.StartsWith("BRK1050", StringComparison.Ordinal) && p.Contains("Broker:MaxTokenLifetime", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_one_lifetime_setting_reaches_issuance_revocation_and_key_retirement()
    {
        await using var host = await StartAsync(new() { ["Broker:MaxTokenLifetime"] = "00:10:00" });

        var tenMinutes = TimeSpan.FromMinutes(10);
        Assert.Equal(tenMinutes, host.Services.GetRequiredService<IOptions<IssuanceOptions>>().Value.MaxTokenLifetime);
        Assert.Equal(tenMinutes, host.Services.GetRequiredService<IOptions<RevocationOptions>>().Value.MaxTokenLifetime);
        Assert.Equal(tenMinutes + TimeSpan.FromSeconds(30), host.Services.GetRequiredService<Broker.Core.Signing.SigningKeyRing>().RetainAfterRetirement);
    }

    [Fact]
    public async Task A_revocation_retention_longer_than_the_token_lifetime_is_kept()
    {
        await using var host = await StartAsync(new()
        {
            ["Broker:MaxTokenLifetime"] = "00:10:00",
            ["Broker:Revocation:MaxTokenLifetime"] = "02:00:00",
        });

        Assert.Equal(TimeSpan.FromHours(2), host.Services.GetRequiredService<IOptions<RevocationOptions>>().Value.MaxTokenLifetime);
    }

    private Task<BrokerTestHost> StartAsync(Dictionary<string, string?> settings) =>
        BrokerTestHost.StartAsync(new BrokerTestHostOptions { PolicyPath = _policyPath, Settings = settings });
}
