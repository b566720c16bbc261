namespace Broker.Core.Attestation.Internal;

/// <summary>
/// What JWT-SVID and OIDC attestation share: a size check first, then a validated proof is
/// served from the cache (keyed by a digest of its exact bytes) only while its trust source's
/// keys are still current; otherwise the subclass validates it and the result is cached.
/// </summary>
internal abstract class CachedJwtAttestor
{
    private readonly Func<TrustIndex> _trust;

    protected CachedJwtAttestor(AttestationOptions options, JwtProofValidator validator, Func<TrustIndex> trust, ValidatedProofCache cache)
    {
        Options = options;
        Validator = validator;
        _trust = trust;
        Cache = cache;
    }

    public ValidatedProofCache Cache { get; }

    protected AttestationOptions Options { get; }

    protected JwtProofValidator Validator { get; }

    protected TrustIndex Trust => _trust();

    public async ValueTask<WorkloadIdentity> AttestAsync(string? token, CancellationToken cancellationToken)
    {
        JwsPreflight.CheckSize(token, Options.MaxProofBytes);
        var digest = ValidatedProofCache.Digest(token!);
        if (Cache.TryGet(digest, out var cached) && await StillTrustedAsync(cached, cancellationToken))
        {
            return cached;
        }

        // Read before validating: a Clear() while this validation runs (a bundle refresh that
        // removed the key it is using) makes the result one-time, never cached.
        var generation = Cache.Generation;
        var identity = await ValidateAsync(token!, cancellationToken);
        Cache.Add(digest, identity, generation);
        return identity;
    }

    /// <summary>Whether the cache holds this exact proof, unexpired (trust is rechecked when it is used).</summary>
    public bool HasValidated(string? token) =>
        token is not null && token.Length <= Options.MaxProofBytes && Cache.Holds(ValidatedProofCache.Digest(token));

    /// <summary>Fully validates a proof not served from the cache.</summary>
    protected abstract ValueTask<WorkloadIdentity> ValidateAsync(string token, CancellationToken cancellationToken);

    /// <summary>The keys of the trust source a cached identity was proven against, if still trusted.</summary>
    protected abstract RefreshingBundle<KeySet>? KeysOf(string trustSource);

    /// <summary>
    /// Bundles refresh when proofs need them; a stream of cached proofs must not keep a
    /// rotated-out key trusted. Bringing the source's bundle up to date clears the cache when
    /// its content changed, and then the proof is validated afresh.
    /// </summary>
    private async ValueTask<bool> StillTrustedAsync(WorkloadIdentity cached, CancellationToken cancellationToken)
    {
        var generation = Cache.Generation;
        if (KeysOf(cached.TrustSource) is not { } keys)
        {
            return false;
        }

        await keys.GetAsync(cancellationToken);
        return Cache.Generation == generation;
    }
}
