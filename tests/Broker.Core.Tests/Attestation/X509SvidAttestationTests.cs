using System.Buffers.Text;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Broker.Core.Attestation;
using Broker.Core.Errors;
using Broker.Core.Policy;
using Broker.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Broker.Core.Tests.Attestation;

public sealed class X509SvidAttestationTests : IDisposable
{
    private const string WorkloadId = "spiffe://example.org/agents/planner";

    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
    private readonly TestPki _pki;
    private readonly HttpClient _http = new();
    private readonly WorkloadAttestor _attestor;

    public X509SvidAttestationTests()
    {
        _pki = TestPki.Create(now: _time.GetUtcNow());
        var policy = new StaticPolicyProvider([new SpiffeTrustDomainPolicy("example.org", null, null, _pki.WriteRootBundle(), TimeSpan.FromMinutes(5), false)]);
        _attestor = new WorkloadAttestor(policy, Options.Create(new AttestationOptions { Audience = AttestationHarness.Audience }), _time, _http);
    }

    public void Dispose()
    {
        _attestor.Dispose();
        _http.Dispose();
        _pki.Dispose();
    }

    [Fact]
    public async Task Valid_x509_svid_is_accepted_with_its_thumbprint()
    {
        using var leaf = _pki.IssueSvid(WorkloadId);

        var identity = await AttestAsync(leaf);

        Assert.Equal(WorkloadId, identity.WorkloadId);
        Assert.Equal(AttestationKind.X509Svid, identity.Kind);
        Assert.Equal("example.org", identity.TrustSource);
        Assert.Equal(new DateTimeOffset(leaf.NotAfter.ToUniversalTime()), identity.ProofExpiresAt);
        Assert.Equal(Base64Url.EncodeToString(SHA256.HashData(leaf.RawData)), identity.CertificateThumbprint);
        Assert.Null(identity.ProofId);
    }

    [Fact]
    public async Task No_client_certificate_is_refused_as_missing()
    {
        await Refusals.ExpectAsync(BrokerErrors.AttestationMissing, () => AttestAsync(null));
    }

    [Fact]
    public async Task Leaf_with_two_uri_sans_is_refused()
    {
        using var leaf = _pki.IssueSvid(new SvidSpec { UriSans = [WorkloadId, "spiffe://example.org/agents/admin"] });

        await Refusals.ExpectAsync(BrokerErrors.AttestationCertificateInvalid, () => AttestAsync(leaf));
    }

    [Fact]
    public async Task Leaf_without_a_uri_san_is_refused()
    {
        using var leaf = _pki.IssueSvid(new SvidSpec { UriSans = [] });

        await Refusals.ExpectAsync(BrokerErrors.AttestationCertificateInvalid, () => AttestAsync(leaf));
    }

    [Theory]
    [InlineData("SPIFFE://example.org/agents/planner")]
    [InlineData("spiffe://example.org:443/agents/planner")]
    [InlineData("spiffe://example.org/agents/../admin")]
    [InlineData("spiffe://example.org")]
    [InlineData("https://example.org/agents/planner")]
    public async Task Leaf_with_a_malformed_spiffe_id_is_refused(string uri)
    {
        using var leaf = _pki.IssueSvid(new SvidSpec { UriSans = [uri] });

        await Refusals.ExpectAsync(BrokerErrors.AttestationCertificateInvalid, () => AttestAsync(leaf));
    }

    [Fact]
    public async Task Ca_certificate_presented_as_a_leaf_is_refused()
    {
        using var leaf = _pki.IssueSvid(new SvidSpec { UriSans = [WorkloadId], IsCertificateAuthority = true });

        await Refusals.ExpectAsync(BrokerErrors.AttestationCertificateInvalid, () => AttestAsync(leaf));
    }

    [Fact]
    public async Task Leaf_is_accepted_one_tick_before_not_after_and_refused_at_it()
    {
        using var leaf = _pki.IssueSvid(new SvidSpec { UriSans = [WorkloadId], NotAfter = _time.GetUtcNow().AddMinutes(30) });
        var notAfter = new DateTimeOffset(leaf.NotAfter.ToUniversalTime());

        _time.SetUtcNow(notAfter.AddTicks(-1));
        await AttestAsync(leaf);

        _time.SetUtcNow(notAfter);
        await Refusals.ExpectAsync(BrokerErrors.AttestationCertificateExpired, () => AttestAsync(leaf));
    }

    [Fact]
    public async Task Long_expired_leaf_is_refused()
    {
        using var leaf = _pki.IssueSvid(new SvidSpec { UriSans = [WorkloadId], NotBefore = _time.GetUtcNow().AddHours(-3), NotAfter = _time.GetUtcNow().AddHours(-2) });

        await Refusals.ExpectAsync(BrokerErrors.AttestationCertificateExpired, () => AttestAsync(leaf));
    }

    [Fact]
    public async Task Leaf_that_is_not_valid_yet_is_refused()
    {
        using var leaf = _pki.IssueSvid(new SvidSpec { UriSans = [WorkloadId], NotBefore = _time.GetUtcNow().AddMinutes(10), NotAfter = _time.GetUtcNow().AddHours(1) });

        await Refusals.ExpectAsync(BrokerErrors.AttestationNotYetValid, () => AttestAsync(leaf));
    }

    [Fact]
    public async Task Leaf_from_another_ca_is_refused()
    {
        using var otherPki = TestPki.Create(now: _time.GetUtcNow());
        using var leaf = otherPki.IssueSvid(WorkloadId);

        await Refusals.ExpectAsync(BrokerErrors.AttestationCertificateInvalid, () => AttestAsync(leaf));
    }

    [Fact]
    public async Task Self_signed_leaf_is_refused()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=self", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri(WorkloadId));
        request.CertificateExtensions.Add(san.Build());
        using var leaf = request.CreateSelfSigned(_time.GetUtcNow().AddMinutes(-1), _time.GetUtcNow().AddHours(1));

        await Refusals.ExpectAsync(BrokerErrors.AttestationCertificateInvalid, () => AttestAsync(leaf));
    }

    [Fact]
    public async Task Leaf_in_an_unknown_trust_domain_is_refused()
    {
        using var leaf = _pki.IssueSvid("spiffe://other.org/agents/planner");

        await Refusals.ExpectAsync(BrokerErrors.AttestationTrustDomainUnknown, () => AttestAsync(leaf));
    }

    [Fact]
    public async Task Leaf_from_a_trust_domain_with_only_a_jwt_bundle_is_refused()
    {
        using var pki = TestPki.Create(now: _time.GetUtcNow());
        using var attestor = new WorkloadAttestor(
            new StaticPolicyProvider([new SpiffeTrustDomainPolicy("example.org", "/nonexistent/jwks.json", null, null, TimeSpan.FromMinutes(5), false)]),
            Options.Create(new AttestationOptions { Audience = AttestationHarness.Audience }),
            _time,
            _http);
        using var leaf = pki.IssueSvid(WorkloadId);

        await Refusals.ExpectAsync(BrokerErrors.AttestationTrustDomainUnknown, () => attestor.AttestAsync(new X509SvidEvidence(leaf), CancellationToken.None).AsTask());
    }

    [Fact]
    public async Task Leaf_of_one_trust_domain_signed_by_another_domains_ca_is_refused()
    {
        using var otherPki = TestPki.Create("other.org", now: _time.GetUtcNow());
        var policy = new StaticPolicyProvider([
            new SpiffeTrustDomainPolicy("example.org", null, null, _pki.WriteRootBundle(), TimeSpan.FromMinutes(5), false),
            new SpiffeTrustDomainPolicy("other.org", null, null, otherPki.WriteRootBundle(), TimeSpan.FromMinutes(5), false),
        ]);
        using var attestor = new WorkloadAttestor(policy, Options.Create(new AttestationOptions { Audience = AttestationHarness.Audience }), _time, _http);
        using var leaf = otherPki.IssueSvid(WorkloadId);

        await Refusals.ExpectAsync(BrokerErrors.AttestationCertificateInvalid, () => attestor.AttestAsync(new X509SvidEvidence(leaf), CancellationToken.None).AsTask());
    }

    [Fact]
    public async Task Leaf_issued_by_an_intermediate_in_the_bundle_is_accepted()
    {
        using var pki = TestPki.Create(now: _time.GetUtcNow(), withIntermediate: true);
        var policy = new StaticPolicyProvider([new SpiffeTrustDomainPolicy("example.org", null, null, pki.WriteBundle("bundle.pem", pki.Root, pki.Intermediate!), TimeSpan.FromMinutes(5), false)]);
        using var attestor = new WorkloadAttestor(policy, Options.Create(new AttestationOptions { Audience = AttestationHarness.Audience }), _time, _http);
        using var leaf = pki.IssueSvid(new SvidSpec { UriSans = [WorkloadId], FromIntermediate = true });

        var identity = await attestor.AttestAsync(new X509SvidEvidence(leaf), CancellationToken.None);

        Assert.Equal(WorkloadId, identity.WorkloadId);
    }

    [Fact]
    public async Task Missing_ca_bundle_file_is_unavailable()
    {
        using var attestor = new WorkloadAttestor(
            new StaticPolicyProvider([new SpiffeTrustDomainPolicy("example.org", null, null, "/nonexistent/bundle.pem", TimeSpan.FromMinutes(5), false)]),
            Options.Create(new AttestationOptions { Audience = AttestationHarness.Audience }),
            _time,
            _http);
        using var leaf = _pki.IssueSvid(WorkloadId);

        await Refusals.ExpectAsync(BrokerErrors.TrustBundleUnavailable, () => attestor.AttestAsync(new X509SvidEvidence(leaf), CancellationToken.None).AsTask());
    }

    private Task<WorkloadIdentity> AttestAsync(X509Certificate2? leaf) =>
        _attestor.AttestAsync(new X509SvidEvidence(leaf), CancellationToken.None).AsTask();
}
