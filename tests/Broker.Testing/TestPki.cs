using System.Formats.Asn1;
using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Broker.Testing;

/// <summary>What a test leaf certificate looks like; defaults make a valid X.509-SVID.</summary>
public sealed record SvidSpec
{
    /// <summary>URI SANs to write (zero, one or several); each goes in as given.</summary>
    public IReadOnlyList<string> UriSans { get; init; } = [];

    /// <summary>Mark the leaf as a CA (BasicConstraints CA=true), which an SVID must not be.</summary>
    public bool IsCertificateAuthority { get; init; }

    /// <summary>Start of validity; defaults to the PKI's clock minus one minute.</summary>
    public DateTimeOffset? NotBefore { get; init; }

    /// <summary>End of validity; defaults to the PKI's clock plus one hour.</summary>
    public DateTimeOffset? NotAfter { get; init; }

    /// <summary>Issue from the intermediate CA (when the PKI has one) rather than the root.</summary>
    public bool FromIntermediate { get; init; }
}

/// <summary>
/// A throwaway PKI generated at run time: an EC P-256 root CA, optionally an intermediate,
/// X.509-SVID leaves and TLS server certificates for loopback, with PEM bundles written to a
/// temporary folder that is deleted on dispose. Nothing is read from or written to a machine
/// certificate store.
/// </summary>
public sealed class TestPki : IDisposable
{
    private readonly DateTimeOffset _now;

    private TestPki(string name, DateTimeOffset now, bool withIntermediate)
    {
        _now = now;
        Directory = Path.Combine(Path.GetTempPath(), "broker-pki-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);

        // Wide validity around both the test clock and the real one: TLS peers check the real clock.
        var from = Min(now, DateTimeOffset.UtcNow).AddDays(-1);
        var to = Max(now, DateTimeOffset.UtcNow).AddYears(5);
        Root = CreateCa($"CN={name} Test Root CA", null, from, to);
        if (withIntermediate)
        {
            Intermediate = CreateCa($"CN={name} Test Intermediate CA", Root, from, to.AddDays(-1));
        }
    }

    /// <summary>The self-signed root (with its private key).</summary>
    public X509Certificate2 Root { get; }

    /// <summary>The intermediate, when created with one (with its private key).</summary>
    public X509Certificate2? Intermediate { get; }

    /// <summary>The temporary folder bundles are written to.</summary>
    public string Directory { get; }

    /// <param name="name">Appears in the CA subjects.</param>
    /// <param name="now">The test clock's "now"; leaf validity defaults are relative to it.</param>
    /// <param name="withIntermediate">Also create an intermediate CA under the root.</param>
    public static TestPki Create(string name = "example.org", DateTimeOffset? now = null, bool withIntermediate = false) =>
        new(name, now ?? DateTimeOffset.UtcNow, withIntermediate);

    /// <summary>Writes the root (the trust anchor) as a PEM bundle and returns its absolute path.</summary>
    public string WriteRootBundle(string fileName = "bundle.pem") => WriteBundle(fileName, Root);

    /// <summary>Writes the given certificates as a PEM bundle and returns its absolute path.</summary>
    public string WriteBundle(string fileName, params X509Certificate2[] certificates)
    {
        var path = Path.Combine(Directory, fileName);
        File.WriteAllText(path, string.Concat(certificates.Select(c => c.ExportCertificatePem() + "\n")));
        return path;
    }

    /// <summary>A valid X.509-SVID for <paramref name="spiffeId"/> (with its private key).</summary>
    public X509Certificate2 IssueSvid(string spiffeId) => IssueSvid(new SvidSpec { UriSans = [spiffeId] });

    /// <summary>A leaf shaped by <paramref name="spec"/> (with its private key), valid or deliberately not.</summary>
    public X509Certificate2 IssueSvid(SvidSpec spec)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=workload", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(spec.IsCertificateAuthority, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(
            spec.IsCertificateAuthority
                ? X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature
                : X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment,
            true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.2"), new Oid("1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        if (spec.UriSans.Count > 0)
        {
            // Written by hand: SubjectAlternativeNameBuilder.AddUri normalises (e.g. lower-cases
            // "SPIFFE://"), and hostile-input tests need the exact text in the certificate.
            var writer = new AsnWriter(AsnEncodingRules.DER);
            using (writer.PushSequence())
            {
                foreach (var uri in spec.UriSans)
                {
                    writer.WriteCharacterString(UniversalTagNumber.IA5String, uri, new Asn1Tag(TagClass.ContextSpecific, 6));
                }
            }

            request.CertificateExtensions.Add(new X509Extension("2.5.29.17", writer.Encode(), critical: false));
        }

        var issuer = spec.FromIntermediate ? Intermediate ?? throw new InvalidOperationException("this PKI has no intermediate") : Root;
        return Sign(request, issuer, key, spec.NotBefore ?? _now.AddMinutes(-1), spec.NotAfter ?? _now.AddHours(1));
    }

    /// <summary>A TLS server certificate for <c>localhost</c> and 127.0.0.1, valid by the real clock.</summary>
    public X509Certificate2 IssueServerCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        san.AddIpAddress(IPAddress.IPv6Loopback);
        request.CertificateExtensions.Add(san.Build());
        var now = DateTimeOffset.UtcNow;
        return Sign(request, Root, key, now.AddDays(-1), now.AddDays(30));
    }

    /// <summary>An HTTP client that trusts exactly this PKI's root for server certificates.</summary>
    public HttpClient CreateHttpClient(bool allowAutoRedirect = false)
    {
        var root = Root;
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = allowAutoRedirect,
            SslOptions = new SslClientAuthenticationOptions
            {
                CertificateChainPolicy = new X509ChainPolicy
                {
                    TrustMode = X509ChainTrustMode.CustomRootTrust,
                    RevocationMode = X509RevocationMode.NoCheck,
                    CustomTrustStore = { root },
                },
            },
        };
        return new HttpClient(handler, disposeHandler: true);
    }

    public void Dispose()
    {
        Root.Dispose();
        Intermediate?.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A file still open elsewhere; the OS temp cleaner will get it.
        }
    }

    private static X509Certificate2 CreateCa(string subject, X509Certificate2? issuer, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        if (issuer is null)
        {
            return request.CreateSelfSigned(notBefore, notAfter);
        }

        return Sign(request, issuer, key, notBefore, notAfter);
    }

    private static X509Certificate2 Sign(CertificateRequest request, X509Certificate2 issuer, ECDsa subjectKey, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        using var issuerKey = issuer.GetECDsaPrivateKey() ?? throw new InvalidOperationException("issuer has no EC private key");
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer, true, false));

        // The issuer's validity must contain the leaf's, or CertificateRequest refuses; clamp so
        // tests can ask for leaves that expired long ago or start far in the future.
        var from = Max(notBefore, issuer.NotBefore.ToUniversalTime());
        var to = Min(notAfter, issuer.NotAfter.ToUniversalTime());
        using var certificate = request.Create(issuer.SubjectName, X509SignatureGenerator.CreateForECDsa(issuerKey), from, to, serial);
        return certificate.CopyWithPrivateKey(subjectKey);
    }

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;
}
