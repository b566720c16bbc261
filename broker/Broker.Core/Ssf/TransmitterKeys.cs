using Broker.Core.Attestation.Internal;
using Broker.Core.Policy;
using Microsoft.Extensions.Logging;

namespace Broker.Core.Ssf;

/// <summary>
/// The configured transmitter's signing keys, loaded and refreshed exactly as attestation trust
/// bundles are: the same bounded, HTTPS-only, redirect-free fetcher, the same JWKS parser (EC
/// P-256/384/521 and RSA of 2048 bits and up, public parts only), the same refresh bounds. A
/// policy change naming another transmitter or key source starts a fresh bundle.
/// </summary>
internal sealed class TransmitterKeys
{
    /// <summary>How often the transmitter's JWKS is re-read; an unknown kid refreshes early (bounded).</summary>
    public static readonly TimeSpan RefreshInterval = TimeSpan.FromMinutes(5);

    private readonly BundleFetcher _fetcher;
    private readonly JwtProofValidator _validator;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private (SsfTransmitterPolicy Policy, RefreshingBundle<KeySet> Bundle)? _current;

    public TransmitterKeys(BundleFetcher fetcher, JwtProofValidator validator, TimeProvider time, ILogger logger)
    {
        _fetcher = fetcher;
        _validator = validator;
        _time = time;
        _logger = logger;
    }

    public RefreshingBundle<KeySet> For(SsfTransmitterPolicy policy)
    {
        lock (_gate)
        {
            if (_current is { } current && current.Policy == policy)
            {
                return current.Bundle;
            }

            Func<Task<byte[]>> fetch = policy.JwksFile is { } file
                ? () => _fetcher.ReadFileAsync(file)
                : () => _fetcher.GetHttpsAsync(policy.JwksUri!);
            var description = $"keys of SSF transmitter {policy.Issuer} from {(object?)policy.JwksFile ?? policy.JwksUri}";
            var bundle = new RefreshingBundle<KeySet>(description, fetch, bytes => JwksParser.Parse(bytes, JwksKind.Oidc, _validator.ParametersFor), RefreshInterval, _time, _logger);
            _current = (policy, bundle);
            return bundle;
        }
    }
}
