using System.Text.Json;
using Broker.Cli;
using Broker.Cli.Commands;
using Broker.Cli.Dev;
using Broker.Cli.Operators;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Client.Tests;

public sealed class DevOperatorTokenTests : IDisposable
{
    private readonly DevEnvironmentFixture _dev = new();

    public void Dispose() => _dev.Dispose();

    [Fact]
    public void Dev_operator_token_header_is_exactly_alg_kid_typ_jwt()
    {
        var token = Mint("alice");

        var header = JsonDocument.Parse(Base64UrlEncoder.Decode(token.Split('.')[0])).RootElement;
        Assert.Equal(["alg", "kid", "typ"], header.EnumerateObject().Select(p => p.Name));
        Assert.Equal("ES256", header.GetProperty("alg").GetString());
        Assert.Equal(DevEnvironmentFixture.OperatorKeyId, header.GetProperty("kid").GetString());
        Assert.Equal("JWT", header.GetProperty("typ").GetString());
    }

    [Fact]
    public async Task Dev_operator_token_validates_against_the_dev_operator_key_with_issuer_audience_and_every_role()
    {
        var token = Mint("alice");

        var result = await new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = DevEnvironmentFixture.OperatorIssuer,
            ValidAudience = DevEnvironmentFixture.OperatorAudience,
            IssuerSigningKey = new ECDsaSecurityKey(_dev.OperatorKey) { KeyId = DevEnvironmentFixture.OperatorKeyId },
            ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
            RequireExpirationTime = true,
            ClockSkew = TimeSpan.Zero,
        });

        Assert.True(result.IsValid, result.Exception?.Message);
        var jwt = (JsonWebToken)result.SecurityToken;
        var claims = JsonDocument.Parse(Base64UrlEncoder.Decode(jwt.EncodedPayload)).RootElement;
        Assert.Equal(["iss", "aud", "sub", "iat", "exp", "roles"], claims.EnumerateObject().Select(p => p.Name));
        Assert.Equal("alice", jwt.Subject);
        Assert.Equal(["responder", "approver", "iam-admin", "auditor", "telemetry-reader"], claims.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
    }

    [Fact]
    public async Task Dev_operator_token_signed_by_another_key_does_not_validate()
    {
        using var other = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);

        var result = await new JsonWebTokenHandler().ValidateTokenAsync(Mint("alice"), new TokenValidationParameters
        {
            ValidIssuer = DevEnvironmentFixture.OperatorIssuer,
            ValidAudience = DevEnvironmentFixture.OperatorAudience,
            IssuerSigningKey = new ECDsaSecurityKey(other) { KeyId = DevEnvironmentFixture.OperatorKeyId },
        });

        Assert.False(result.IsValid);
    }

    [Fact]
    public void Dev_operator_token_lives_at_most_ten_minutes_from_the_clock()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2030-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

        var token = new JsonWebToken(Mint("alice", time));

        Assert.Equal(time.GetUtcNow().UtcDateTime, token.IssuedAt);
        Assert.True(token.ValidTo > token.IssuedAt);
        Assert.True(token.ValidTo - token.IssuedAt <= TimeSpan.FromMinutes(10));
    }

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("a\nb")]
    public void Dev_operator_names_must_be_printable(string name)
    {
        var ex = Assert.Throws<CliException>(() => Mint(name));

        Assert.Equal(ExitCodes.Usage, ex.ExitCode);
        Assert.Contains("--as", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dev_as_names_the_operator_and_defaults_to_dev_operator()
    {
        var named = Resolve("--dev", "--as", "bob");
        var unnamed = Resolve("--dev");

        Assert.Equal("bob", new JsonWebToken(named.Token).Subject);
        Assert.Equal(OperatorTokenMinter.DefaultOperator, new JsonWebToken(unnamed.Token).Subject);
        Assert.Equal("http://127.0.0.1:5080", named.Address);
    }

    [Fact]
    public void Operator_token_comes_from_the_option_then_the_environment_without_a_bearer_prefix()
    {
        var fromOption = Resolve(["--operator-token", "Bearer a.b.c"], new Dictionary<string, string> { ["BROKER_OPERATOR_TOKEN"] = "x.y.z" });
        var fromEnvironment = Resolve([], new Dictionary<string, string> { ["BROKER_OPERATOR_TOKEN"] = " x.y.z\n", ["BROKER_ADDRESS"] = "https://broker.internal:5080" });

        Assert.Equal("a.b.c", fromOption.Token);
        Assert.Equal("x.y.z", fromEnvironment.Token);
        Assert.Equal("https://broker.internal:5080", fromEnvironment.Address);
    }

    private string Mint(string name, TimeProvider? time = null)
    {
        using var minter = OperatorTokenMinter.FromManifest(DevManifest.Load(_dev.Directory), time ?? TimeProvider.System);
        return minter.Mint(name);
    }

    private (string Address, string Token) Resolve(params string[] args) => Resolve(args, null);

    private (string Address, string Token) Resolve(string[] args, IReadOnlyDictionary<string, string>? environment)
    {
        var context = new CliContext(new StringWriter(), new StringWriter(), new StringReader(""), TimeProvider.System, name => environment?.GetValueOrDefault(name));
        var options = new OperatorOptions();
        var command = new System.CommandLine.RootCommand();
        options.AddTo(command);
        var parse = command.Parse([.. args, "--dev-dir", _dev.Directory]);
        Assert.Empty(parse.Errors);
        return options.Resolve(parse, context);
    }
}
