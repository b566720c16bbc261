using System.Security.Cryptography.X509Certificates;
using Broker.Core.Policy;
using Microsoft.Extensions.Logging;

namespace Broker.Core.Attestation.Internal;

/// <summary>A SPIFFE trust domain and its loaded bundles (either may be absent).</summary>
internal sealed record SpiffeDomainTrust(
    SpiffeTrustDomainPolicy Policy,
    RefreshingBundle<KeySet>? JwtKeys,
    RefreshingBundle<X509Certificate2Collection>? X509Roots);

/// <summary>An allow-listed OIDC issuer and its keys.</summary>
internal sealed record OidcIssuerTrust(OidcIssuerPolicy Policy, RefreshingBundle<KeySet> Keys);

/// <summary>
/// The trust sources of one policy, looked up by exact trust domain name or issuer. Built anew
/// on every policy change; a source whose policy entry did not change keeps its loaded bundle,
/// so a reload neither refetches everything nor loses a last good bundle.
/// </summary>
internal sealed class TrustIndex
{
    private readonly Dictionary<string, SpiffeDomainTrust> _domains;
    private readonly Dictionary<string, OidcIssuerTrust> _issuers;

    private TrustIndex(Dictionary<string, SpiffeDomainTrust> domains, Dictionary<string, OidcIssuerTrust> issuers)
    {
        _domains = domains;
        _issuers = issuers;
    }

    public bool TryGetDomain(string trustDomain, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SpiffeDomainTrust? domain) =>
        _domains.TryGetValue(trustDomain, out domain);

    public bool TryGetIssuer(string issuer, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out OidcIssuerTrust? trust) =>
        _issuers.TryGetValue(issuer, out trust);

    public static TrustIndex Build(TrustPolicy trust, TrustIndex? previous, TrustSourceFactory factory)
    {
        var domains = new Dictionary<string, SpiffeDomainTrust>(StringComparer.Ordinal);
        foreach (var policy in trust.SpiffeDomains)
        {
            if (previous is not null && previous._domains.TryGetValue(policy.TrustDomain, out var kept) && kept.Policy == policy)
            {
                domains[policy.TrustDomain] = kept;
                continue;
            }

            domains[policy.TrustDomain] = new SpiffeDomainTrust(policy, factory.JwtBundle(policy), factory.X509Bundle(policy));
        }

        var issuers = new Dictionary<string, OidcIssuerTrust>(StringComparer.Ordinal);
        foreach (var policy in trust.OidcIssuers)
        {
            if (previous is not null && previous._issuers.TryGetValue(policy.Issuer, out var kept) && kept.Policy == policy)
            {
                issuers[policy.Issuer] = kept;
                continue;
            }

            issuers[policy.Issuer] = new OidcIssuerTrust(policy, factory.OidcKeys(policy));
        }

        return new TrustIndex(domains, issuers);
    }
}

/// <summary>Creates the refreshing bundle for each kind of trust source.</summary>
internal sealed class TrustSourceFactory
{
    private readonly BundleFetcher _fetcher;
    private readonly JwtProofValidator _validator;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Action _onBundleChanged;

    public TrustSourceFactory(BundleFetcher fetcher, JwtProofValidator validator, TimeProvider time, ILogger logger, Action onBundleChanged)
    {
        _fetcher = fetcher;
        _validator = validator;
        _time = time;
        _logger = logger;
        _onBundleChanged = onBundleChanged;
    }

    public RefreshingBundle<KeySet>? JwtBundle(SpiffeTrustDomainPolicy policy)
    {
        Func<Task<byte[]>> fetch;
        string description;
        if (policy.JwtBundleFile is { } file)
        {
            fetch = () => _fetcher.ReadFileAsync(file);
            description = $"JWT bundle of trust domain {policy.TrustDomain} from {file}";
        }
        else if (policy.JwtBundleUrl is { } url)
        {
            fetch = () => _fetcher.GetHttpsAsync(url);
            description = $"JWT bundle of trust domain {policy.TrustDomain} from {url}";
        }
        else
        {
            return null;
        }

        return Watch(new RefreshingBundle<KeySet>(description, fetch, bytes => JwksParser.Parse(bytes, JwksKind.SpiffeJwt, _validator.ParametersFor), policy.RefreshInterval, _time, _logger));
    }

    public RefreshingBundle<X509Certificate2Collection>? X509Bundle(SpiffeTrustDomainPolicy policy)
    {
        if (policy.X509BundleFile is not { } file)
        {
            return null;
        }

        return Watch(new RefreshingBundle<X509Certificate2Collection>(
            $"X.509 bundle of trust domain {policy.TrustDomain} from {file}",
            () => _fetcher.ReadFileAsync(file),
            X509BundleParser.Parse,
            policy.RefreshInterval,
            _time,
            _logger));
    }

    public RefreshingBundle<KeySet> OidcKeys(OidcIssuerPolicy policy)
    {
        Func<Task<byte[]>> fetch;
        string description;
        if (policy.JwksFile is { } file)
        {
            fetch = () => _fetcher.ReadFileAsync(file);
            description = $"keys of issuer {policy.Issuer} from {file}";
        }
        else if (policy.JwksUri is { } uri)
        {
            fetch = () => _fetcher.GetHttpsAsync(uri);
            description = $"keys of issuer {policy.Issuer} from {uri}";
        }
        else
        {
            fetch = () => _fetcher.DiscoverAndGetJwksAsync(policy.Issuer);
            description = $"keys of issuer {policy.Issuer} via discovery";
        }

        return Watch(new RefreshingBundle<KeySet>(description, fetch, bytes => JwksParser.Parse(bytes, JwksKind.Oidc, _validator.ParametersFor), policy.RefreshInterval, _time, _logger));
    }

    private RefreshingBundle<T> Watch<T>(RefreshingBundle<T> bundle)
        where T : class
    {
        bundle.Changed += _onBundleChanged;
        return bundle;
    }
}

/// <summary>Trust anchors from a PEM file: its CERTIFICATE blocks, at least one.</summary>
internal static class X509BundleParser
{
    public static X509Certificate2Collection Parse(byte[] pem)
    {
        var collection = new X509Certificate2Collection();
        collection.ImportFromPem(System.Text.Encoding.ASCII.GetString(pem));
        if (collection.Count == 0)
        {
            throw new InvalidDataException("X.509 bundle holds no certificates");
        }

        return collection;
    }
}
