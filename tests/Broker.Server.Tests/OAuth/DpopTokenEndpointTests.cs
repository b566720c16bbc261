using System.Net;
using System.Text.Json.Nodes;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;

namespace Broker.Server.Tests.OAuth;

/// <summary>
/// DPoP (RFC 9449) at the token endpoint on real Kestrel with real keys: a proof binds the token
/// to its key (<c>cnf.jkt</c>, <c>token_type DPoP</c>); a proof that is forged, for another
/// request, stale or replayed is refused <c>invalid_dpop_proof</c> with its Broker reason and
/// audited; server nonces are stateless.
/// </summary>
public sealed class DpopTokenEndpointTests : IAsyncLifetime
{
    private readonly TestDpopKey _key = new();
    private OAuthScenario _oauth = null!;

    public async Task InitializeAsync() => _oauth = await OAuthScenario.StartAsync();

    public async Task DisposeAsync()
    {
        await _oauth.DisposeAsync();
        _key.Dispose();
    }

    [Fact]
    public async Task A_dpop_proof_binds_the_token_to_the_proofs_key()
    {
        var answer = await TokenAsync("dpop-bound", _key.Proof("POST", _oauth.TokenEndpoint));

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal("DPoP", answer["token_type"]);
        Assert.False(string.IsNullOrEmpty(answer.DpopNonce));
        var payload = TokenForger.PayloadOf(answer["access_token"]!);
        Assert.Equal(_key.Thumbprint, (string?)payload["cnf"]!["jkt"]);
        var introspection = await OAuthScenario.PostAsync(_oauth.Http, "/oauth2/introspect", new Dictionary<string, string?> { ["token"] = answer["access_token"] }, [("Authorization", "Bearer " + _oauth.Broker.Host.ResourceServerToken())]);
        Assert.Equal("DPoP", introspection["token_type"]);
        Assert.Equal(_key.Thumbprint, introspection.Body.GetProperty("cnf").GetProperty("jkt").GetString());
    }

    [Fact]
    public async Task Without_a_proof_the_token_is_a_bearer_token_with_no_cnf()
    {
        var answer = await TokenAsync("dpop-none");

        Assert.Equal("Bearer", answer["token_type"]);
        Assert.Null(TokenForger.PayloadOf(answer["access_token"]!)["cnf"]);
    }

    public static TheoryData<string, string> Forgeries => new()
    {
        { "wrong-method", "DPOP_PROOF_TARGET_MISMATCH" },
        { "wrong-uri", "DPOP_PROOF_TARGET_MISMATCH" },
        { "node-address-not-issuer", "DPOP_PROOF_TARGET_MISMATCH" },
        { "stale", "DPOP_PROOF_STALE" },
        { "future", "DPOP_PROOF_STALE" },
        { "tampered", "DPOP_PROOF_INVALID" },
        { "other-key", "DPOP_PROOF_INVALID" },
        { "typ-jwt", "DPOP_PROOF_INVALID" },
        { "alg-none", "DPOP_PROOF_INVALID" },
        { "hs256", "DPOP_PROOF_INVALID" },
        { "private-key", "DPOP_PROOF_INVALID" },
        { "kid-header", "DPOP_PROOF_INVALID" },
        { "no-jti", "DPOP_PROOF_INVALID" },
        { "string-iat", "DPOP_PROOF_INVALID" },
        { "not-a-jws", "DPOP_PROOF_INVALID" },
    };

    [Theory]
    [MemberData(nameof(Forgeries))]
    public async Task A_bad_proof_is_refused_invalid_dpop_proof_with_its_reason_and_audited(string forgery, string reason)
    {
        var endpoint = _oauth.TokenEndpoint;
        var proof = forgery switch
        {
            "wrong-method" => _key.Proof("GET", endpoint),
            "wrong-uri" => _key.Proof("POST", endpoint.Replace("/oauth2/token", "/oauth2/revoke", StringComparison.Ordinal)),
            "node-address-not-issuer" => _key.Proof("POST", "http://localhost:1/oauth2/token"),
            "stale" => _key.Proof("POST", endpoint, issuedAt: DateTimeOffset.UtcNow.AddSeconds(-120)),
            "future" => _key.Proof("POST", endpoint, issuedAt: DateTimeOffset.UtcNow.AddSeconds(120)),
            "tampered" => Tamper(_key.Proof("POST", endpoint)),
            "other-key" => OtherKeySigned(endpoint),
            "typ-jwt" => _key.Proof("POST", endpoint, change: (h, _) => h["typ"] = "JWT"),
            "alg-none" => Unsigned(_key.Proof("POST", endpoint, change: (h, _) => h["alg"] = "none")),
            "hs256" => _key.Proof("POST", endpoint, change: (h, _) => h["alg"] = "HS256"),
            "private-key" => _key.Proof("POST", endpoint, change: (h, _) => h["jwk"]!["d"] = "AAAA"),
            "kid-header" => _key.Proof("POST", endpoint, change: (h, _) => h["kid"] = "k1"),
            "no-jti" => _key.Proof("POST", endpoint, change: (_, p) => p.Remove("jti")),
            "string-iat" => _key.Proof("POST", endpoint, change: (_, p) => p["iat"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture)),
            _ => "not.a.jws!",
        };
        var task = "dpop-" + forgery;

        var answer = await TokenAsync(task, proof);

        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal("invalid_dpop_proof", answer.Error);
        Assert.Equal(reason, answer.Reason);
        var refused = Assert.Single(await _oauth.Broker.AuditLinesAsync(), l => l.Contains("\"credential.refused\"", StringComparison.Ordinal) && l.Contains(task, StringComparison.Ordinal));
        Assert.Contains(reason, refused, StringComparison.Ordinal);
        Assert.DoesNotContain(await _oauth.Broker.AuditLinesAsync(), l => l.Contains("\"credential.issued\"", StringComparison.Ordinal) && l.Contains(task, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_replayed_proof_is_refused_and_a_fresh_one_from_the_same_key_is_accepted()
    {
        var proof = _key.Proof("POST", _oauth.TokenEndpoint);
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync("dpop-replay-1", proof)).Status);

        var replay = await TokenAsync("dpop-replay-2", proof);
        var fresh = await TokenAsync("dpop-replay-3", _key.Proof("POST", _oauth.TokenEndpoint));

        Assert.Equal("invalid_dpop_proof", replay.Error);
        Assert.Equal("DPOP_PROOF_REPLAYED", replay.Reason);
        Assert.Equal(HttpStatusCode.OK, fresh.Status);
    }

    [Fact]
    public async Task Two_proofs_in_one_request_are_refused()
    {
        // HttpClient joins repeated headers into one line; either way the request is refused.
        var answer = await TokenAsync("dpop-two", _key.Proof("POST", _oauth.TokenEndpoint), _key.Proof("POST", _oauth.TokenEndpoint));

        Assert.Equal("invalid_dpop_proof", answer.Error);
        Assert.Contains(answer.Reason, new[] { "DPOP_PROOF_MISSING", "DPOP_PROOF_INVALID" });
    }

    [Fact]
    public async Task A_nonce_that_is_not_the_brokers_is_answered_use_dpop_nonce_with_a_fresh_one_and_not_audited()
    {
        var forged = Convert.ToBase64String(new byte[24]).TrimEnd('=').Replace('+', '-').Replace('/', '_');

        var answer = await TokenAsync("dpop-bad-nonce", _key.Proof("POST", _oauth.TokenEndpoint, nonce: forged));
        var retried = await TokenAsync("dpop-bad-nonce", _key.Proof("POST", _oauth.TokenEndpoint, nonce: answer.DpopNonce));

        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal("use_dpop_nonce", answer.Error);
        Assert.Equal("DPOP_NONCE_REQUIRED", answer.Reason);
        Assert.False(string.IsNullOrEmpty(answer.DpopNonce));
        Assert.Equal(HttpStatusCode.OK, retried.Status);
        Assert.DoesNotContain(await _oauth.Broker.AuditLinesAsync(), l => l.Contains("\"credential.refused\"", StringComparison.Ordinal) && l.Contains("dpop-bad-nonce", StringComparison.Ordinal));
    }

    private Task<OAuthAnswer> TokenAsync(string task, params string[] proofs) =>
        OAuthScenario.PostAsync(_oauth.Http, "/oauth2/token", _oauth.Exchange(task: task), proofs.Select(p => ("DPoP", p)));

    private static string Tamper(string proof)
    {
        var parts = proof.Split('.');
        var payload = JsonNode.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(parts[1]))!.AsObject();
        payload["htm"] = "POST ";
        return parts[0] + "." + TestTrustDomain.Encode(payload.ToJsonString()) + "." + parts[2];
    }

    /// <summary>A proof whose header names this key but whose signature is another key's.</summary>
    private string OtherKeySigned(string endpoint)
    {
        using var other = new TestDpopKey();
        var theirs = other.Proof("POST", endpoint).Split('.');
        var ours = _key.Proof("POST", endpoint).Split('.');
        return ours[0] + "." + ours[1] + "." + theirs[2];
    }

    private static string Unsigned(string proof) => proof[..(proof.LastIndexOf('.') + 1)];
}
