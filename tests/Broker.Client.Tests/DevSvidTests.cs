using System.Text.Json;
using Broker.Cli;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Client.Tests;

public sealed class DevSvidTests : IDisposable
{
    private readonly DevEnvironmentFixture _dev = new();

    public void Dispose() => _dev.Dispose();

    [Fact]
    public async Task Dev_svid_header_is_exactly_alg_kid_typ()
    {
        var run = await Cli.RunAsync("dev", "svid", "--agent", "spiffe://dev.local/agents/demo", "--dev-dir", _dev.Directory);

        Assert.Equal(ExitCodes.Success, run.ExitCode);
        Assert.Equal("", run.Error);
        var header = JsonDocument.Parse(Base64UrlEncoder.Decode(run.Out.Trim().Split('.')[0])).RootElement;
        Assert.Equal(["alg", "kid", "typ"], header.EnumerateObject().Select(p => p.Name));
        Assert.Equal("ES256", header.GetProperty("alg").GetString());
        Assert.Equal(DevEnvironmentFixture.KeyId, header.GetProperty("kid").GetString());
        Assert.Equal("JWT", header.GetProperty("typ").GetString());
    }

    [Fact]
    public async Task Dev_svid_validates_against_the_dev_trust_key_with_the_broker_audience()
    {
        var run = await Cli.RunAsync("dev", "svid", "--agent", "spiffe://dev.local/agents/demo", "--dev-dir", _dev.Directory);

        var handler = new JsonWebTokenHandler();
        var result = await handler.ValidateTokenAsync(run.Out.Trim(), new TokenValidationParameters
        {
            ValidateIssuer = false,
            ValidAudience = DevEnvironmentFixture.Audience,
            IssuerSigningKey = new ECDsaSecurityKey(_dev.Key) { KeyId = DevEnvironmentFixture.KeyId },
            ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
            RequireExpirationTime = true,
            ClockSkew = TimeSpan.Zero,
        });

        Assert.True(result.IsValid, result.Exception?.Message);
        var token = (JsonWebToken)result.SecurityToken;
        Assert.Equal("spiffe://dev.local/agents/demo", token.Subject);
        Assert.Equal(["sub", "aud", "iat", "exp", "jti"], JsonDocument.Parse(Base64UrlEncoder.Decode(token.EncodedPayload)).RootElement.EnumerateObject().Select(p => p.Name));
        Assert.Equal(JsonValueKind.Array, JsonDocument.Parse(Base64UrlEncoder.Decode(token.EncodedPayload)).RootElement.GetProperty("aud").ValueKind);
    }

    [Fact]
    public async Task Dev_svid_lifetime_follows_ttl_from_the_clock()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2030-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

        var run = await Cli.RunAsync(["dev", "svid", "--agent", "spiffe://dev.local/agents/demo", "--ttl", "90s", "--dev-dir", _dev.Directory], time: time);

        var token = new JsonWebToken(run.Out.Trim());
        Assert.Equal(time.GetUtcNow().UtcDateTime, token.IssuedAt);
        Assert.Equal(time.GetUtcNow().AddSeconds(90).UtcDateTime, token.ValidTo);
    }

    [Fact]
    public async Task Two_dev_svids_have_different_jti()
    {
        var first = new JsonWebToken((await Cli.RunAsync("dev", "svid", "--agent", "spiffe://dev.local/agents/a", "--dev-dir", _dev.Directory)).Out.Trim());
        var second = new JsonWebToken((await Cli.RunAsync("dev", "svid", "--agent", "spiffe://dev.local/agents/a", "--dev-dir", _dev.Directory)).Out.Trim());

        Assert.NotEqual(first.Id, second.Id);
    }

    [Theory]
    [InlineData("spiffe://example.org/agents/demo")]
    [InlineData("SPIFFE://dev.local/agents/demo")]
    [InlineData("spiffe://dev.local")]
    [InlineData("spiffe://dev.local/agents/../admin")]
    [InlineData("https://dev.local/agents/demo")]
    public async Task Dev_svid_refuses_agents_outside_the_dev_trust_domain_or_malformed(string agent)
    {
        var run = await Cli.RunAsync("dev", "svid", "--agent", agent, "--dev-dir", _dev.Directory);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Equal("", run.Out);
        Assert.Contains("--agent", run.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("2h")]
    [InlineData("0s")]
    [InlineData("5")]
    [InlineData("-5m")]
    public async Task Dev_svid_refuses_a_ttl_out_of_range_or_malformed(string ttl)
    {
        var run = await Cli.RunAsync("dev", "svid", "--agent", "spiffe://dev.local/agents/demo", "--ttl", ttl, "--dev-dir", _dev.Directory);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Equal("", run.Out);
    }

    [Fact]
    public async Task Dev_svid_without_a_dev_environment_is_a_local_error_saying_how_to_start_one()
    {
        var run = await Cli.RunAsync("dev", "svid", "--agent", "spiffe://dev.local/agents/demo", "--dev-dir", Path.Combine(_dev.Directory, "missing"));

        Assert.Equal(ExitCodes.LocalError, run.ExitCode);
        Assert.Contains("--dev", run.Error, StringComparison.Ordinal);
    }
}
