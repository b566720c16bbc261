using Broker.Core.Attestation;
using Broker.Core.Errors;
using Broker.Core.Policy;
using Broker.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Broker.Core.Tests.Attestation;

/// <summary>JWT bundles served over real HTTPS on loopback: refresh bounds, failure handling, and URLs a proof names are never fetched.</summary>
public sealed class JwtBundleTests : IAsyncLifetime
{
    private static readonly TimeSpan Refresh = TimeSpan.FromMinutes(10);

    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
    private readonly TestTrustDomain _domain = new("example.org");
    private TestPki _pki = null!;
    private LoopbackHttpsServer _server = null!;
    private HttpClient _http = null!;
    private WorkloadAttestor _attestor = null!;

    public async Task InitializeAsync()
    {
        _pki = TestPki.Create(now: _time.GetUtcNow());
        _server = await LoopbackHttpsServer.StartAsync(_pki.IssueServerCertificate());
        _server.Serve("/bundle", _domain.JwksJson());
        _http = _pki.CreateHttpClient();
        _attestor = CreateAttestor(_server.Url("/bundle"));
    }

    public async Task DisposeAsync()
    {
        _attestor.Dispose();
        _http.Dispose();
        await _server.DisposeAsync();
        _pki.Dispose();
        _domain.Dispose();
    }

    [Fact]
    public async Task Bundle_is_fetched_over_https_once_and_reused()
    {
        await AttestAsync(Mint());
        await AttestAsync(Mint(claims: c => c["jti"] = "second"));

        Assert.Equal(1, _server.Hits("/bundle"));
    }

    [Fact]
    public async Task Bundle_is_refetched_after_the_refresh_interval()
    {
        await AttestAsync(Mint());
        _time.Advance(Refresh);

        await AttestAsync(Mint());

        Assert.Equal(2, _server.Hits("/bundle"));
    }

    [Theory]
    [InlineData("jku")]
    [InlineData("x5u")]
    public async Task Key_url_headers_are_refused_and_never_fetched(string header)
    {
        using var attacker = new TestTrustDomain("example.org");
        _server.Serve("/attacker-keys", attacker.JwksJson());
        var forged = attacker.MintSvid(_domain.SpiffeId(), AttestationHarness.Audience, _time.GetUtcNow(), header: h => h[header] = _server.Url("/attacker-keys").ToString());

        await Refusals.ExpectAsync(BrokerErrors.AttestationHeaderNotAllowed, () => AttestAsync(forged));

        Assert.Equal(0, _server.Hits("/attacker-keys"));
        Assert.Equal(0, _server.TotalHits);
    }

    [Fact]
    public async Task Unknown_kid_triggers_at_most_one_early_refresh_per_tenth_of_the_interval()
    {
        await AttestAsync(Mint());
        var unknown = Mint(header: h => h["kid"] = "not-yet-published");

        for (var i = 0; i < 5; i++)
        {
            await Refusals.ExpectAsync(BrokerErrors.AttestationKeyUnknown, () => AttestAsync(unknown));
        }

        Assert.Equal(1, _server.Hits("/bundle"));

        _time.Advance(Refresh / 10);
        for (var i = 0; i < 5; i++)
        {
            await Refusals.ExpectAsync(BrokerErrors.AttestationKeyUnknown, () => AttestAsync(unknown));
        }

        Assert.Equal(2, _server.Hits("/bundle"));
    }

    [Fact]
    public async Task Rotated_key_is_picked_up_by_an_early_refresh_before_the_interval()
    {
        await AttestAsync(Mint());
        _domain.AddKey("rotated");
        _server.Serve("/bundle", _domain.JwksJson());
        _time.Advance(Refresh / 10);

        var identity = await AttestAsync(Mint());

        Assert.Equal(_domain.SpiffeId(), identity.WorkloadId);
        Assert.Equal(2, _server.Hits("/bundle"));
    }

    [Fact]
    public async Task Failed_refresh_keeps_the_last_good_bundle()
    {
        await AttestAsync(Mint());
        _server.Serve("/bundle", "upstream broke", status: 500);
        _time.Advance(Refresh);

        await AttestAsync(Mint(claims: c => c["jti"] = "after-failure"));

        Assert.Equal(2, _server.Hits("/bundle"));
    }

    [Fact]
    public async Task Refresh_with_a_garbled_bundle_keeps_the_last_good_bundle()
    {
        await AttestAsync(Mint());
        _server.Serve("/bundle", "{\"keys\": 5}");
        _time.Advance(Refresh);

        await AttestAsync(Mint(claims: c => c["jti"] = "after-garbage"));
    }

    [Fact]
    public async Task No_bundle_at_all_is_unavailable_not_unauthenticated()
    {
        _server.Serve("/bundle", "down", status: 503);

        var refusal = await Refusals.ExpectAsync(BrokerErrors.TrustBundleUnavailable, () => AttestAsync(Mint()));

        Assert.Equal(FailureKind.Unavailable, refusal.Kind);
    }

    [Fact]
    public async Task Unreachable_bundle_is_not_hammered_by_every_request()
    {
        _server.Serve("/bundle", "down", status: 503);

        for (var i = 0; i < 5; i++)
        {
            await Refusals.ExpectAsync(BrokerErrors.TrustBundleUnavailable, () => AttestAsync(Mint()));
        }

        Assert.Equal(1, _server.Hits("/bundle"));
    }

    [Fact]
    public async Task Plain_http_bundle_url_is_never_fetched()
    {
        using var attestor = CreateAttestor(new Uri("http://127.0.0.1:" + _server.BaseAddress.Port + "/bundle"));

        await Refusals.ExpectAsync(BrokerErrors.TrustBundleUnavailable, () => attestor.AttestAsync(new JwtSvidEvidence(Mint()), CancellationToken.None).AsTask());

        Assert.Equal(0, _server.TotalHits);
    }

    [Fact]
    public async Task Bundle_server_with_an_untrusted_certificate_is_unavailable()
    {
        using var otherPki = TestPki.Create();
        using var http = otherPki.CreateHttpClient();
        using var attestor = new WorkloadAttestor(
            new StaticPolicyProvider([new SpiffeTrustDomainPolicy("example.org", null, _server.Url("/bundle"), null, Refresh, false)]),
            Options.Create(new AttestationOptions { Audience = AttestationHarness.Audience }),
            _time,
            http);

        await Refusals.ExpectAsync(BrokerErrors.TrustBundleUnavailable, () => attestor.AttestAsync(new JwtSvidEvidence(Mint()), CancellationToken.None).AsTask());
    }

    [Fact]
    public async Task Missing_bundle_file_is_unavailable()
    {
        using var attestor = new WorkloadAttestor(
            new StaticPolicyProvider([new SpiffeTrustDomainPolicy("example.org", "/nonexistent/broker/jwks.json", null, null, Refresh, false)]),
            Options.Create(new AttestationOptions { Audience = AttestationHarness.Audience }),
            _time,
            _http);

        await Refusals.ExpectAsync(BrokerErrors.TrustBundleUnavailable, () => attestor.AttestAsync(new JwtSvidEvidence(Mint()), CancellationToken.None).AsTask());
    }

    private WorkloadAttestor CreateAttestor(Uri bundleUrl) => new(
        new StaticPolicyProvider([new SpiffeTrustDomainPolicy("example.org", null, bundleUrl, null, Refresh, false)]),
        Options.Create(new AttestationOptions { Audience = AttestationHarness.Audience }),
        _time,
        _http);

    private string Mint(Action<System.Text.Json.Nodes.JsonObject>? claims = null, Action<System.Text.Json.Nodes.JsonObject>? header = null) =>
        _domain.MintSvid(_domain.SpiffeId(), AttestationHarness.Audience, _time.GetUtcNow(), claims: claims, header: header);

    private Task<WorkloadIdentity> AttestAsync(string token) =>
        _attestor.AttestAsync(new JwtSvidEvidence(token), CancellationToken.None).AsTask();
}
