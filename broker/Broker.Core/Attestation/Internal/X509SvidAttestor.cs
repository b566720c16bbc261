using System.Buffers.Text;
using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Broker.Core.Errors;

namespace Broker.Core.Attestation.Internal;

/// <summary>
/// X.509-SVIDs presented over mutual TLS: exactly one spiffe:// URI SAN, not a CA, inside its
/// validity window by our clock, chaining to that trust domain's own CA bundle and no other.
/// </summary>
internal sealed class X509SvidAttestor
{
    private const string SubjectAltNameOid = "2.5.29.17";
    private const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";

    private readonly TimeProvider _time;
    private readonly Func<TrustIndex> _trust;

    public X509SvidAttestor(TimeProvider time, Func<TrustIndex> trust)
    {
        _time = time;
        _trust = trust;
    }

    public async ValueTask<WorkloadIdentity> AttestAsync(X509Certificate2? leaf, CancellationToken cancellationToken)
    {
        if (leaf is null)
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationMissing, "no client certificate was presented");
        }

        var spiffeId = ReadSpiffeId(leaf);
        if (!_trust().TryGetDomain(spiffeId.TrustDomain, out var domain) || domain.X509Roots is null)
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationTrustDomainUnknown, "client certificate names a trust domain this broker does not trust for X.509-SVIDs");
        }

        CheckLeafConstraints(leaf);

        // RFC 5280 makes notAfter inclusive, but the platform chain engine (checked below with
        // the same clock) treats that instant as expired; refusing at notAfter keeps both checks
        // in agreement and the reason precise. Certificates carry whole seconds.
        var now = _time.GetUtcNow();
        if (now >= leaf.NotAfter.ToUniversalTime())
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationCertificateExpired, "client certificate has expired");
        }

        if (now < leaf.NotBefore.ToUniversalTime())
        {
            throw BrokerErrors.Attestation(BrokerErrors.AttestationNotYetValid, "client certificate is not valid yet");
        }

        var roots = await domain.X509Roots.GetAsync(cancellationToken);
        BuildChain(leaf, roots, now);

        return new WorkloadIdentity(
            spiffeId.ToString(),
            AttestationKind.X509Svid,
            spiffeId.TrustDomain,
            new DateTimeOffset(leaf.NotAfter.ToUniversalTime()),
            CertificateThumbprint: Base64Url.EncodeToString(SHA256.HashData(leaf.RawData)));
    }

    private static SpiffeId ReadSpiffeId(X509Certificate2 leaf)
    {
        var sanExtensions = leaf.Extensions.Where(e => e.Oid?.Value == SubjectAltNameOid).ToList();
        if (sanExtensions.Count != 1)
        {
            throw Invalid("client certificate must carry exactly one subject alternative name extension");
        }

        List<string> uris;
        try
        {
            uris = ReadUriNames(sanExtensions[0].RawData);
        }
        catch (AsnContentException)
        {
            throw Invalid("client certificate subject alternative names cannot be read");
        }

        // Two URI SANs would make the identity ambiguous; the X.509-SVID spec allows exactly one.
        if (uris.Count != 1)
        {
            throw Invalid("client certificate must carry exactly one URI subject alternative name");
        }

        if (!SpiffeId.TryParse(uris[0], out var id, out var error))
        {
            throw Invalid($"client certificate URI name is not a valid SPIFFE ID: {error}");
        }

        return id;
    }

    /// <summary>GeneralNames ::= SEQUENCE OF GeneralName; uniformResourceIdentifier is [6] IA5String.</summary>
    private static List<string> ReadUriNames(byte[] der)
    {
        var uris = new List<string>();
        var reader = new AsnReader(der, AsnEncodingRules.DER);
        var names = reader.ReadSequence();
        reader.ThrowIfNotEmpty();
        var uriTag = new Asn1Tag(TagClass.ContextSpecific, 6);
        while (names.HasData)
        {
            var tag = names.PeekTag();
            if (tag.HasSameClassAndValue(uriTag))
            {
                uris.Add(names.ReadCharacterString(UniversalTagNumber.IA5String, uriTag));
            }
            else
            {
                names.ReadEncodedValue();
            }
        }

        return uris;
    }

    private static void CheckLeafConstraints(X509Certificate2 leaf)
    {
        foreach (var extension in leaf.Extensions)
        {
            switch (extension)
            {
                // A CA certificate presented as a workload could mint further "workloads".
                case X509BasicConstraintsExtension { CertificateAuthority: true }:
                    throw Invalid("client certificate is a CA certificate, not a workload certificate");
                case X509KeyUsageExtension usage when (usage.KeyUsages & (X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign)) != 0:
                    throw Invalid("client certificate may sign certificates; a workload certificate must not");
            }
        }
    }

    private static void BuildChain(X509Certificate2 leaf, X509Certificate2Collection roots, DateTimeOffset now)
    {
        using var chain = new X509Chain();
        var policy = chain.ChainPolicy;

        // Only this trust domain's bundle is trusted: never the machine's root store.
        policy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        policy.CustomTrustStore.AddRange(roots);

        // X.509-SVIDs live for minutes to hours and SPIFFE issuers publish no CRL or OCSP:
        // revocation is by short lifetime and bundle rotation. Checking would only add
        // network calls (and failures) with nothing to check against.
        policy.RevocationMode = X509RevocationMode.NoCheck;

        // Never follow AIA pointers from a presented certificate: no outbound fetches.
        policy.DisableCertificateDownloads = true;
        policy.VerificationTime = now.UtcDateTime;
        policy.VerificationTimeIgnored = false;

        // An EKU, when present, must allow TLS client authentication.
        policy.ApplicationPolicy.Add(new Oid(ClientAuthOid));

        if (chain.Build(leaf))
        {
            return;
        }

        var flags = chain.ChainStatus.Aggregate(X509ChainStatusFlags.NoError, (all, s) => all | s.Status);
        throw flags == X509ChainStatusFlags.NotTimeValid
            ? BrokerErrors.Attestation(BrokerErrors.AttestationCertificateExpired, "client certificate chain is outside its validity period")
            : Invalid("client certificate does not chain to the trust domain's CA bundle");
    }

    private static BrokerException Invalid(string message) =>
        BrokerErrors.Attestation(BrokerErrors.AttestationCertificateInvalid, message);
}
