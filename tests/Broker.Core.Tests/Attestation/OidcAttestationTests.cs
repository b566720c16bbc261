using System.Text.Json.Nodes;
using Broker.Core.Attestation;
using Broker.Core.Errors;
using Broker.Core.Policy;
using Broker.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Broker.Core.Tests.Attestation;

public sealed class OidcAttestationTests : IAsyncLifetime
{
    private const string Audience = AttestationHarness.Audience;

    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
    private readonly TestTrustDomain _keys = new("kubernetes");
    private TestPki _pki = null!;
    private LoopbackHttpsServer _server = null!;
    private HttpClient _http = null!;
    private string _issuer = null!;

    public async Task InitializeAsync()
    {
        _pki = TestPki.Create(now: _time.GetUtcNow());
        _server = await LoopbackHttpsServer.StartAsync(_pki.IssueServerCertificate());
        _issuer = _server.BaseAddress + "issuers/cluster-a";
        _server.Serve("/issuers/cluster-a/.well-known/openid-configuration", new JsonObject
        {
            ["issuer"] = _issuer,
            ["jwks_uri"] = _server.Url("/issuers/cluster-a/keys").ToString(),
        }.ToJsonString());
        _server.Serve("/issuers/cluster-a/keys", _keys.JwksJson(use: null));
        _http = _pki.CreateHttpClient();
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
        _pki.Dispose();
        _keys.Dispose();
    }

    [Fact]
    public async Task Kubernetes_token_from_a_jwks_file_maps_its_subject_to_the_workload_id()
    {
        using var attestor = Attestor(Issuer(jwksFile: _keys.WriteJwksFile(use: null)));
        var token = Mint("system:serviceaccount:agents:planner");

        var identity = await AttestAsync(attestor, token);

        Assert.Equal($"oidc:{_issuer}#system:serviceaccount:agents:planner", identity.WorkloadId);
        Assert.Equal(AttestationKind.OidcToken, identity.Kind);
        Assert.Equal(_issuer, identity.TrustSource);
        Assert.Equal(_time.GetUtcNow().AddMinutes(10), identity.ProofExpiresAt);
    }

    [Fact]
    public async Task Keys_are_found_by_discovery_over_https()
    {
        using var attestor = Attestor(Issuer());

        var identity = await AttestAsync(attestor, Mint("system:serviceaccount:agents:planner"));

        Assert.EndsWith("#system:serviceaccount:agents:planner", identity.WorkloadId, StringComparison.Ordinal);
        Assert.Equal(1, _server.Hits("/issuers/cluster-a/.well-known/openid-configuration"));
        Assert.Equal(1, _server.Hits("/issuers/cluster-a/keys"));
    }

    [Fact]
    public async Task Keys_are_fetched_from_an_explicit_jwks_uri_without_discovery()
    {
        using var attestor = Attestor(Issuer(jwksUri: _server.Url("/issuers/cluster-a/keys")));

        await AttestAsync(attestor, Mint("ci:repo:main"));

        Assert.Equal(0, _server.Hits("/issuers/cluster-a/.well-known/openid-configuration"));
    }

    [Fact]
    public async Task Discovery_document_naming_another_issuer_is_not_trusted()
    {
        _server.Serve("/issuers/cluster-a/.well-known/openid-configuration", new JsonObject
        {
            ["issuer"] = "https://elsewhere.example",
            ["jwks_uri"] = _server.Url("/issuers/cluster-a/keys").ToString(),
        }.ToJsonString());
        using var attestor = Attestor(Issuer());

        await Refusals.ExpectAsync(BrokerErrors.TrustBundleUnavailable, () => AttestAsync(attestor, Mint("sub")));
        Assert.Equal(0, _server.Hits("/issuers/cluster-a/keys"));
    }

    [Fact]
    public async Task Discovery_pointing_at_plain_http_keys_is_not_followed()
    {
        _server.Serve("/issuers/cluster-a/.well-known/openid-configuration", new JsonObject
        {
            ["issuer"] = _issuer,
            ["jwks_uri"] = "http://127.0.0.1:" + _server.BaseAddress.Port + "/issuers/cluster-a/keys",
        }.ToJsonString());
        using var attestor = Attestor(Issuer());

        await Refusals.ExpectAsync(BrokerErrors.TrustBundleUnavailable, () => AttestAsync(attestor, Mint("sub")));
        Assert.Equal(0, _server.Hits("/issuers/cluster-a/keys"));
    }

    [Fact]
    public async Task Unknown_issuer_is_refused()
    {
        using var attestor = Attestor(Issuer());
        var token = Mint("sub", claims: c => c["iss"] = "https://evil.example/");

        await Refusals.ExpectAsync(BrokerErrors.AttestationIssuerUnknown, () => AttestAsync(attestor, token));
        Assert.Equal(0, _server.TotalHits);
    }

    [Fact]
    public async Task Issuer_differing_only_by_a_trailing_slash_is_refused()
    {
        using var attestor = Attestor(Issuer());

        await Refusals.ExpectAsync(BrokerErrors.AttestationIssuerUnknown, () => AttestAsync(attestor, Mint("sub", claims: c => c["iss"] = _issuer + "/")));
    }

    [Fact]
    public async Task Missing_issuer_is_refused()
    {
        using var attestor = Attestor(Issuer());

        await Refusals.ExpectAsync(BrokerErrors.AttestationClaimMissing, () => AttestAsync(attestor, Mint("sub", claims: c => c.Remove("iss"))));
    }

    [Fact]
    public async Task Wrong_audience_is_refused()
    {
        using var attestor = Attestor(Issuer());

        await Refusals.ExpectAsync(BrokerErrors.AttestationAudienceMismatch, () => AttestAsync(attestor, Mint("sub", claims: c => c["aud"] = new JsonArray("https://kubernetes.default.svc"))));
    }

    [Fact]
    public async Task Extra_audience_is_refused()
    {
        using var attestor = Attestor(Issuer());

        await Refusals.ExpectAsync(BrokerErrors.AttestationAudienceMismatch, () => AttestAsync(attestor, Mint("sub", claims: c => c["aud"] = new JsonArray(Audience, "https://kubernetes.default.svc"))));
    }

    [Fact]
    public async Task Expired_token_is_refused()
    {
        using var attestor = Attestor(Issuer());
        var token = Mint("sub");
        _time.Advance(TimeSpan.FromMinutes(10) + TimeSpan.FromSeconds(30));

        await Refusals.ExpectAsync(BrokerErrors.AttestationExpired, () => AttestAsync(attestor, token));
    }

    [Fact]
    public async Task Subject_is_read_from_the_configured_claim()
    {
        using var attestor = Attestor(Issuer(subjectClaim: "repository", prefix: "github:"));
        var token = Mint("repo:acme/app:ref:refs/heads/main", claims: c => c["repository"] = "acme/app");

        var identity = await AttestAsync(attestor, token);

        Assert.Equal("github:acme/app", identity.WorkloadId);
    }

    [Fact]
    public async Task Missing_or_empty_subject_is_refused()
    {
        using var attestor = Attestor(Issuer());

        await Refusals.ExpectAsync(BrokerErrors.AttestationClaimMissing, () => AttestAsync(attestor, Mint("sub", claims: c => c.Remove("sub"))));
        await Refusals.ExpectAsync(BrokerErrors.AttestationClaimMissing, () => AttestAsync(attestor, Mint("")));
    }

    [Theory]
    [InlineData("agent\u0000admin")]
    [InlineData("agent\nadmin")]
    public async Task Subject_with_control_characters_is_refused(string subject)
    {
        using var attestor = Attestor(Issuer());

        await Refusals.ExpectAsync(BrokerErrors.AttestationSubjectInvalid, () => AttestAsync(attestor, Mint(subject)));
    }

    [Fact]
    public async Task Overlong_or_non_string_subject_is_refused()
    {
        using var attestor = Attestor(Issuer());

        await Refusals.ExpectAsync(BrokerErrors.AttestationSubjectInvalid, () => AttestAsync(attestor, Mint(new string('s', 513))));
        await Refusals.ExpectAsync(BrokerErrors.AttestationSubjectInvalid, () => AttestAsync(attestor, Mint("x", claims: c => c["sub"] = 42)));
    }

    [Fact]
    public async Task Ci_token_with_an_x5t_header_is_accepted()
    {
        using var attestor = Attestor(Issuer());

        await AttestAsync(attestor, Mint("repo:acme/app", header: h => h["x5t"] = "dGh1bWJwcmludA"));
    }

    [Fact]
    public async Task Alg_none_and_embedded_jwk_are_refused_as_for_jwt_svids()
    {
        using var attestor = Attestor(Issuer());
        var token = Mint("sub");

        await Refusals.ExpectAsync(BrokerErrors.AttestationAlgorithmNotAllowed, () => AttestAsync(attestor, TokenForger.AlgNone(token)));
        await Refusals.ExpectAsync(BrokerErrors.AttestationHeaderNotAllowed, () => AttestAsync(attestor, Mint("sub", header: h => h["jwk"] = _keys.PublicJwk(null))));
    }

    [Fact]
    public async Task Single_use_issuer_requires_a_jti_and_reports_it_as_proof_id()
    {
        using var attestor = Attestor(Issuer() with { SingleUseProofs = true });

        await Refusals.ExpectAsync(BrokerErrors.AttestationClaimMissing, () => AttestAsync(attestor, Mint("sub")));
        var identity = await AttestAsync(attestor, Mint("sub", claims: c => c["jti"] = "run-42"));

        Assert.Equal($"oidc:{_issuer}#run-42", identity.ProofId);
    }

    [Fact]
    public async Task A_trust_domain_named_https_cannot_claim_an_oidc_issuers_single_use_key()
    {
        // Before typed prefixes, "https" + ":" + "//host/issuers/cluster-a#run-42" was exactly
        // the OIDC issuer's key for jti run-42: one proof could burn (or replay past) the other's.
        using var https = new TestTrustDomain("https");
        var domain = new SpiffeTrustDomainPolicy("https", https.WriteJwksFile(), null, null, TimeSpan.FromMinutes(5), SingleUseProofs: true);
        using var attestor = new WorkloadAttestor(
            new StaticPolicyProvider([domain], [Issuer() with { SingleUseProofs = true }]),
            Options.Create(new AttestationOptions { Audience = Audience }),
            _time,
            _http);
        var crafted = _issuer["https:".Length..] + "#run-42";
        var svid = https.MintSvid(https.SpiffeId("/agent"), Audience, _time.GetUtcNow(), claims: c => c["jti"] = crafted);

        var fromDomain = await attestor.AttestAsync(new JwtSvidEvidence(svid), CancellationToken.None);
        var fromIssuer = await AttestAsync(attestor, Mint("sub", claims: c => c["jti"] = "run-42"));

        Assert.NotEqual(fromIssuer.ProofId, fromDomain.ProofId);
        Assert.Equal("jwt-svid:https:" + crafted, fromDomain.ProofId);
        Assert.Equal($"oidc:{_issuer}#run-42", fromIssuer.ProofId);
    }

    [Fact]
    public async Task A_trust_domain_named_ssf_cannot_claim_a_security_event_key()
    {
        // The SSF receiver keys a SET's jti as "ssf:" + hex digest in the same replay keyspace.
        using var ssf = new TestTrustDomain("ssf");
        var domain = new SpiffeTrustDomainPolicy("ssf", ssf.WriteJwksFile(), null, null, TimeSpan.FromMinutes(5), SingleUseProofs: true);
        using var attestor = new WorkloadAttestor(new StaticPolicyProvider([domain]), Options.Create(new AttestationOptions { Audience = Audience }), _time, _http);
        var digest = new string('a', 64);
        var svid = ssf.MintSvid(ssf.SpiffeId("/agent"), Audience, _time.GetUtcNow(), claims: c => c["jti"] = digest);

        var identity = await attestor.AttestAsync(new JwtSvidEvidence(svid), CancellationToken.None);

        Assert.False(identity.ProofId!.StartsWith("ssf:", StringComparison.Ordinal));
        Assert.Equal("jwt-svid:ssf:" + digest, identity.ProofId);
    }

    [Fact]
    public async Task Oidc_token_presented_as_a_jwt_svid_is_not_accepted()
    {
        using var attestor = Attestor(Issuer());

        await Refusals.ExpectAsync(BrokerErrors.AttestationSubjectInvalid, () => attestor.AttestAsync(new JwtSvidEvidence(Mint("system:serviceaccount:a:b")), CancellationToken.None).AsTask());
    }

    private OidcIssuerPolicy Issuer(Uri? jwksUri = null, string? jwksFile = null, string subjectClaim = "sub", string? prefix = null) =>
        new(_issuer, jwksUri, jwksFile, subjectClaim, prefix ?? $"oidc:{_issuer}#", TimeSpan.FromMinutes(5), false);

    private WorkloadAttestor Attestor(OidcIssuerPolicy issuer) => new(
        new StaticPolicyProvider(issuers: [issuer]),
        Options.Create(new AttestationOptions { Audience = Audience }),
        _time,
        _http);

    private string Mint(string subject, Action<JsonObject>? claims = null, Action<JsonObject>? header = null) =>
        _keys.MintOidc(_issuer, subject, Audience, _time.GetUtcNow(), claims: claims, header: header);

    private static Task<WorkloadIdentity> AttestAsync(WorkloadAttestor attestor, string token) =>
        attestor.AttestAsync(new OidcTokenEvidence(token), CancellationToken.None).AsTask();
}
