using System.Security.Claims;
using Broker.ResourceServer.Internal;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Broker.ResourceServer.Tests;

public sealed class OptionsTests
{
    private static BrokerJwtBearerOptions Valid() => new()
    {
        Authority = "https://broker.example.org",
        Audience = "https://api.example.org",
        RevocationAddress = "https://broker.example.org:5080",
        RevocationTokenFile = "/run/secrets/broker-resource-server-token",
    };

    private static IReadOnlyList<string> Failures(BrokerJwtBearerOptions options) =>
        new BrokerJwtBearerOptionsValidator().Validate(null, options) is { Failed: true } result ? [.. result.Failures!] : [];

    [Fact]
    public void Defaults_fail_closed_with_a_two_second_bound_and_https()
    {
        var options = new BrokerJwtBearerOptions();
        Assert.Equal(StaleStance.FailClosed, options.StaleStance);
        Assert.Equal(TimeSpan.FromSeconds(2), options.StalenessBound);
        Assert.True(options.RequireHttpsMetadata);
        Assert.Empty(Failures(Valid()));
    }

    [Fact]
    public void A_revocation_channel_without_exactly_one_credential_is_refused()
    {
        var none = Valid();
        none.RevocationTokenFile = "";
        var both = Valid();
        both.RevocationTokenProvider = _ => ValueTask.FromResult("token");
        var provider = Valid();
        provider.RevocationTokenFile = "";
        provider.RevocationTokenProvider = _ => ValueTask.FromResult("token");

        Assert.Contains(Failures(none), f => f.StartsWith("BRS012:", StringComparison.Ordinal));
        Assert.Contains(Failures(both), f => f.StartsWith("BRS012:", StringComparison.Ordinal));
        Assert.Empty(Failures(provider));
    }

    [Theory]
    [InlineData("BRS001", "", null, null, true)]
    [InlineData("BRS001", "broker.example.org", null, null, true)]
    [InlineData("BRS002", "http://broker.example.org", null, null, true)]
    [InlineData("BRS003", null, "", null, true)]
    [InlineData("BRS004", null, null, "", true)]
    [InlineData("BRS004", null, null, "broker:5080", true)]
    [InlineData("BRS005", null, null, "http://broker.example.org:5080", true)]
    public void Missing_or_unsafe_settings_are_refused_with_a_stable_id(string id, string? authority, string? audience, string? revocation, bool https)
    {
        var options = Valid();
        options.Authority = authority ?? options.Authority;
        options.Audience = audience ?? options.Audience;
        options.RevocationAddress = revocation ?? options.RevocationAddress;
        options.RequireHttpsMetadata = https;
        Assert.Contains(Failures(options), f => f.StartsWith(id + ":", StringComparison.Ordinal));
    }

    [Fact]
    public void Plain_http_is_allowed_only_with_RequireHttpsMetadata_off()
    {
        var options = Valid();
        options.Authority = "http://127.0.0.1:5081";
        options.RevocationAddress = "http://127.0.0.1:5080";
        options.RequireHttpsMetadata = false;
        Assert.Empty(Failures(options));
    }

    [Fact]
    public void Nonsense_timings_are_refused()
    {
        var options = Valid();
        options.StalenessBound = TimeSpan.Zero;
        options.ReconnectDelayMin = TimeSpan.FromSeconds(5);
        options.ReconnectDelayMax = TimeSpan.FromSeconds(1);
        options.ClockSkew = TimeSpan.FromHours(1);
        options.PruneInterval = TimeSpan.Zero;
        options.StaleStance = (StaleStance)7;
        var failures = Failures(options);
        foreach (var id in new[] { "BRS006", "BRS007", "BRS008", "BRS009", "BRS010" })
        {
            Assert.Contains(failures, f => f.StartsWith(id + ":", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task A_host_without_a_revocation_address_refuses_to_start()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.Logging.ClearProviders();
        builder.WebHost.UseSetting("urls", "http://127.0.0.1:0");
        builder.Services.AddBrokerResourceServer(o =>
        {
            o.Authority = "https://broker.example.org";
            o.Audience = "https://api.example.org";
        });
        await using var app = builder.Build();
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());
        Assert.Contains("BRS004", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void JwtBearer_is_configured_for_Broker_access_tokens()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddBrokerResourceServer(o =>
        {
            var valid = Valid();
            o.Authority = valid.Authority;
            o.Audience = valid.Audience;
            o.RevocationAddress = valid.RevocationAddress;
            o.RevocationTokenFile = valid.RevocationTokenFile;
        });
        using var provider = services.BuildServiceProvider();
        var jwt = provider.GetRequiredService<IOptionsMonitor<JwtBearerOptions>>().Get(JwtBearerDefaults.AuthenticationScheme);

        Assert.Equal("https://broker.example.org", jwt.Authority);
        Assert.Equal("https://api.example.org", jwt.Audience);
        Assert.True(jwt.RequireHttpsMetadata);
        Assert.False(jwt.MapInboundClaims);
        Assert.Equal(["at+jwt"], jwt.TokenValidationParameters.ValidTypes);
        Assert.Equal(TimeSpan.FromSeconds(30), jwt.TokenValidationParameters.ClockSkew);
        Assert.NotNull(jwt.Events?.OnTokenValidated);
        Assert.Single(provider.GetServices<IHostedService>().OfType<BrokerRevocationClient>());
    }

    [Fact]
    public void Only_one_Broker_scheme_per_application()
    {
        var services = new ServiceCollection();
        var authentication = services.AddAuthentication();
        authentication.AddBrokerJwtBearer(_ => { });
        Assert.Throws<InvalidOperationException>(() => authentication.AddBrokerJwtBearer("Other", _ => { }));
    }

    [Fact]
    public void Tokens_lacking_any_claim_revocation_matches_on_are_not_broker_tokens()
    {
        var full = new[] { ("jti", "id"), ("sub", "spiffe://e/a"), ("task", "t"), ("phase", "planning"), ("iat", "1700000000") };
        Assert.True(BrokerTokenCheck.TryReadFacts(Principal(full), out var facts));
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1700000000), facts.IssuedAt);
        for (var i = 0; i < full.Length; i++)
        {
            Assert.False(BrokerTokenCheck.TryReadFacts(Principal([.. full.Where((_, j) => j != i)]), out _));
        }

        Assert.False(BrokerTokenCheck.TryReadFacts(Principal([.. full[..4], ("iat", "soon")]), out _));
    }

    private static ClaimsPrincipal Principal((string Type, string Value)[] claims) =>
        new(new ClaimsIdentity(claims.Select(c => new Claim(c.Type, c.Value)), "Bearer"));
}
