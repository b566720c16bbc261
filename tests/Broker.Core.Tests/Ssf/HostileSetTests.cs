using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Broker.Core.Errors;
using Broker.Core.Policy;
using Broker.Core.Ssf;
using Broker.Testing;

namespace Broker.Core.Tests.Ssf;

/// <summary>
/// SETs go through the attestation JWS stack: each case here was accepted (or fetched) by the
/// receiver's former, separate JWS path.
/// </summary>
public sealed class HostileSetTests : IDisposable
{
    private readonly SetHarness _h = new();

    public void Dispose() => _h.Dispose();

    [Fact]
    public async Task A_valid_set_is_read()
    {
        var read = await _h.ReadAsync(_h.Mint(p => p["jti"] = "set-1"));

        Assert.Equal("ssf:set-1", read.SignalId);
        Assert.Equal(SetHarness.Agent, read.Agent);
        Assert.Equal("high", read.Level);
    }

    [Fact]
    public async Task An_oversized_set_is_refused_before_parsing()
    {
        var set = _h.Mint(p => p["padding"] = new string('a', _h.Reader.MaxBytes));

        var refused = await _h.RefusedAsync(set);

        Assert.Equal("invalid_request", refused.Err);
        Assert.Contains("larger than", refused.Description, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"iss\":\"https://evil.example.org\",\"iss\":\"https://risk.example.org\"}")]
    [InlineData("{\"iss\":\"https://risk.example.org\",\"\\u0069ss\":\"https://risk.example.org\"}")]
    public async Task Duplicate_members_are_refused_even_when_validly_signed(string payloadPrefix)
    {
        var payload = _h.Payload();
        payload.Remove("iss");
        var json = payloadPrefix[..^1] + "," + payload.ToJsonString()[1..];
        var set = _h.Transmitter.SignCompact(SetHarness.Header().ToJsonString(), json);

        var refused = await _h.RefusedAsync(set);

        Assert.Equal("invalid_request", refused.Err);
        Assert.Contains("duplicate", refused.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_duplicate_header_member_is_refused()
    {
        var set = _h.Transmitter.SignCompact("{\"alg\":\"ES256\",\"kid\":\"ssf-1\",\"typ\":\"secevent+jwt\",\"typ\":\"JWT\"}", _h.Payload().ToJsonString());

        Assert.Contains("duplicate", (await _h.RefusedAsync(set)).Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_utf8_inside_a_header_value_is_a_refusal_not_a_crash()
    {
        // Found by SecurityEventReaderProperties: the JSON reader only checks UTF-8 when a string is read.
        var header = Encoding.UTF8.GetBytes("{\"alg\":\"ES256\",\"kid\":\"ssf-1\",\"typ\":\"secevent+jwt\"}").ToList();
        header.Insert(header.IndexOf((byte)'1'), 0xFF);
        var set = _h.Transmitter.SignSegments(Base64Url.EncodeToString(header.ToArray()), TestTrustDomain.Encode(_h.Payload().ToJsonString()));

        var refused = await _h.RefusedAsync(set);

        Assert.Equal("invalid_request", refused.Err);
        Assert.Contains("UTF-8", refused.Description, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("RS256")]
    [InlineData("PS256")]
    [InlineData("ES384")]
    public async Task An_alg_the_key_cannot_verify_is_refused(string alg)
    {
        // Signed with the EC P-256 key, header claims another algorithm.
        var set = _h.Mint(header: SetHarness.Header(alg: alg));

        var refused = await _h.RefusedAsync(set);

        Assert.Equal("invalid_key", refused.Err);
    }

    [Fact]
    public async Task An_alg_other_than_the_one_the_jwk_pins_is_refused()
    {
        // The JWKS pins ES384 for the key; the SET says ES256 and is signed by it.
        var jwk = _h.Transmitter.PublicJwk(use: null);
        jwk["alg"] = "ES384";
        File.WriteAllText(_h.Policy.JwksFile!, new JsonObject { ["keys"] = new JsonArray(jwk) }.ToJsonString());

        Assert.Equal("invalid_key", (await _h.RefusedAsync(_h.Mint())).Err);
    }

    [Theory]
    [InlineData("none")]
    [InlineData("HS256")]
    [InlineData("es256")]
    public async Task Unsigned_and_symmetric_algs_are_refused(string alg)
    {
        var set = TestTrustDomain.Encode(SetHarness.Header(alg: alg).ToJsonString()) + "." + TestTrustDomain.Encode(_h.Payload().ToJsonString()) + ".c2ln";

        var refused = await _h.RefusedAsync(set);

        Assert.Equal("invalid_request", refused.Err);
        Assert.Contains("algorithm", refused.Description, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("jwk")]
    [InlineData("jku")]
    [InlineData("x5u")]
    [InlineData("crit")]
    [InlineData("cty")]
    public async Task Key_bearing_and_extension_headers_are_refused(string name)
    {
        var header = SetHarness.Header();
        header[name] = "https://evil.example.org/keys";

        Assert.Contains("header that is not allowed", (await _h.RefusedAsync(_h.Mint(header: header))).Description, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("JWT")]
    [InlineData("at+jwt")]
    [InlineData(null)]
    public async Task A_token_that_is_not_typed_as_a_set_is_refused(string? typ)
    {
        var header = SetHarness.Header();
        header.Remove("typ");
        if (typ is not null)
        {
            header["typ"] = typ;
        }

        var refused = await _h.RefusedAsync(_h.Mint(header: header));

        Assert.Equal("invalid_request", refused.Err);
    }

    [Fact]
    public async Task An_rsa_1024_key_in_the_transmitters_jwks_is_never_used()
    {
        using var weak = RSA.Create(1024);
        var p = weak.ExportParameters(false);
        var jwks = new JsonObject
        {
            ["keys"] = new JsonArray(new JsonObject
            {
                ["kty"] = "RSA",
                ["kid"] = "weak",
                ["n"] = Base64Url.EncodeToString(p.Modulus),
                ["e"] = Base64Url.EncodeToString(p.Exponent),
            }),
        };
        File.WriteAllText(_h.Policy.JwksFile!, jwks.ToJsonString());
        var input = TestTrustDomain.Encode(SetHarness.Header(alg: "RS256", kid: "weak").ToJsonString()) + "." + TestTrustDomain.Encode(_h.Payload().ToJsonString());
        var signature = weak.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);

        var refused = await _h.RefusedAsync(input + "." + Base64Url.EncodeToString(signature));

        Assert.Equal("invalid_key", refused.Err);
        Assert.Contains("kid", refused.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_redirecting_jwks_url_is_not_followed()
    {
        using var pki = TestPki.Create(now: _h.Time.GetUtcNow());
        await using var server = await LoopbackHttpsServer.StartAsync(pki.IssueServerCertificate());
        server.Serve("/real-keys", _h.Transmitter.JwksJson(use: null));
        server.Redirect("/keys", server.Url("/real-keys"));
        using var h = new SetHarness(pki.CreateHttpClient());
        server.Serve("/real-keys", h.Transmitter.JwksJson(use: null));
        var policy = h.Policy with { JwksFile = null, JwksUri = server.Url("/keys") };

        var unavailable = await Assert.ThrowsAsync<BrokerException>(async () => await h.ReadAsync(h.Mint(), policy));

        Assert.Equal(FailureKind.Unavailable, unavailable.Kind);
        Assert.Equal(1, server.Hits("/keys"));
        Assert.Equal(0, server.Hits("/real-keys"));

        // The same keys served directly are used.
        var direct = h.Policy with { JwksFile = null, JwksUri = server.Url("/real-keys") };
        Assert.Equal("high", (await h.ReadAsync(h.Mint(), direct)).Level);
    }

    [Fact]
    public async Task A_plain_http_jwks_url_is_never_fetched()
    {
        var policy = _h.Policy with { JwksFile = null, JwksUri = new Uri("http://127.0.0.1:9/keys") };

        var unavailable = await Assert.ThrowsAsync<BrokerException>(async () => await _h.ReadAsync(_h.Mint(), policy));

        Assert.Equal(FailureKind.Unavailable, unavailable.Kind);
    }

    [Fact]
    public async Task A_signature_by_another_key_under_the_transmitters_kid_is_refused()
    {
        using var stranger = new TestTrustDomain("stranger.example.org", keyId: "ssf-1");

        Assert.Equal("invalid_key", (await _h.RefusedAsync(stranger.Sign(SetHarness.Header(), _h.Payload()))).Err);
    }

    [Theory]
    [InlineData("iat", "\"1700000000\"")]
    [InlineData("exp", "1.5")]
    [InlineData("iss", "[\"https://risk.example.org\"]")]
    [InlineData("jti", "42")]
    public async Task Wrongly_typed_claims_are_refused(string claim, string json)
    {
        var refused = await _h.RefusedAsync(_h.Mint(p => p[claim] = JsonNode.Parse(json)));

        Assert.True(refused.Err is "invalid_request" or "invalid_issuer", refused.Err);
    }
}
