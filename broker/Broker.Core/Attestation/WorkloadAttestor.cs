using Broker.Core.Attestation.Internal;
using Broker.Core.Errors;
using Broker.Core.Policy;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Broker.Core.Attestation;

/// <summary>
/// Validates JWT-SVIDs, X.509-SVIDs and OIDC workload tokens against the trust sources of the
/// policy in force. Trust bundles load lazily on first use and refresh on their own schedule;
/// a policy change swaps the trust sources and clears every validated-proof cache.
/// </summary>
public sealed class WorkloadAttestor : IWorkloadAttestor, IDisposable
{
    private readonly IPolicyProvider _policy;
    private readonly ILogger _logger;
    private readonly TrustSourceFactory _sources;
    private readonly Lock _rebuild = new();
    private volatile TrustIndex _trust;

    /// <param name="policy">Where trust sources come from; its <see cref="IPolicyProvider.Changed"/> event is followed.</param>
    /// <param name="options">Validated limits (see <see cref="AttestationOptionsValidator"/>).</param>
    /// <param name="timeProvider">The clock every expiry, skew and refresh decision uses.</param>
    /// <param name="bundleClient">Fetches HTTPS trust bundles and OIDC discovery documents (and nothing a proof names).</param>
    /// <param name="logger">Bundle load and refresh events; never tokens or keys.</param>
    public WorkloadAttestor(IPolicyProvider policy, IOptions<AttestationOptions> options, TimeProvider timeProvider, HttpClient bundleClient, ILogger<WorkloadAttestor>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(bundleClient);

        var settings = options.Value;
        var check = new AttestationOptionsValidator().Validate(null, settings);
        if (check.Failed)
        {
            throw new OptionsValidationException(nameof(AttestationOptions), typeof(AttestationOptions), check.Failures);
        }

        _policy = policy;
        _logger = (ILogger?)logger ?? NullLogger.Instance;

        var validator = new JwtProofValidator(settings, timeProvider);
        var fetcher = new BundleFetcher(bundleClient, settings.BundleFetchTimeout, timeProvider);
        _sources = new TrustSourceFactory(fetcher, validator, timeProvider, _logger, ClearProofCaches);

        // Bundles load lazily, so building the index costs nothing and fetches nothing.
        _trust = TrustIndex.Build(policy.Current.Trust, null, _sources);
        JwtSvid = new JwtSvidAttestor(settings, validator, () => _trust, new ValidatedProofCache(settings.ValidatedProofCacheSize, timeProvider));
        Oidc = new OidcTokenAttestor(settings, validator, () => _trust, new ValidatedProofCache(settings.ValidatedProofCacheSize, timeProvider));
        X509 = new X509SvidAttestor(timeProvider, () => _trust);

        policy.Changed += OnPolicyChanged;
    }

    internal JwtSvidAttestor JwtSvid { get; }

    internal OidcTokenAttestor Oidc { get; }

    internal X509SvidAttestor X509 { get; }

    internal TrustIndex Trust => _trust;

    public ValueTask<WorkloadIdentity> AttestAsync(AttestationEvidence evidence, CancellationToken cancellationToken) => evidence switch
    {
        JwtSvidEvidence jwt => JwtSvid.AttestAsync(jwt.Token, cancellationToken),
        OidcTokenEvidence oidc => Oidc.AttestAsync(oidc.Token, cancellationToken),
        X509SvidEvidence x509 => X509.AttestAsync(x509.ClientCertificate, cancellationToken),
        _ => throw BrokerErrors.Attestation(BrokerErrors.AttestationMissing, "no attestation proof was presented"),
    };

    public bool HasValidated(AttestationEvidence evidence) => evidence switch
    {
        JwtSvidEvidence jwt => JwtSvid.HasValidated(jwt.Token),
        OidcTokenEvidence oidc => Oidc.HasValidated(oidc.Token),
        _ => false,
    };

    public void Dispose() => _policy.Changed -= OnPolicyChanged;

    private void OnPolicyChanged(BrokerPolicy policy)
    {
        lock (_rebuild)
        {
            _trust = TrustIndex.Build(policy.Trust, _trust, _sources);
        }

        // A removed trust domain or issuer must stop vouching at once, not when its proofs expire.
        ClearProofCaches();
    }

    private void ClearProofCaches()
    {
        JwtSvid.Cache.Clear();
        Oidc.Cache.Clear();
        AttestationLog.TrustChanged(_logger);
    }
}
