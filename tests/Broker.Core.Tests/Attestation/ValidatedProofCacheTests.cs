using Broker.Core.Errors;

namespace Broker.Core.Tests.Attestation;

public sealed class ValidatedProofCacheTests : IDisposable
{
    private readonly AttestationHarness _h = new();

    public void Dispose() => _h.Dispose();

    [Fact]
    public async Task Second_presentation_of_the_same_bytes_is_served_from_the_cache()
    {
        var token = _h.Svid();

        var first = await _h.AttestJwtAsync(token);
        var second = await _h.AttestJwtAsync(token);

        Assert.Same(first, second);
        Assert.Equal(1, _h.Attestor.JwtSvid.Cache.Hits);
    }

    [Fact]
    public async Task Cached_single_use_proof_still_carries_its_proof_id_for_the_replay_store()
    {
        using var h = new AttestationHarness(singleUse: true);
        var token = h.Svid(claims: c => c["jti"] = "once");

        await h.AttestJwtAsync(token);
        var cached = await h.AttestJwtAsync(token);

        Assert.Equal(1, h.Attestor.JwtSvid.Cache.Hits);
        Assert.Equal("jwt-svid:example.org:once", cached.ProofId);
    }

    [Fact]
    public async Task Cache_never_serves_a_proof_at_or_past_its_expiry()
    {
        var token = _h.Svid(TimeSpan.FromMinutes(5));
        await _h.AttestJwtAsync(token);

        _h.Time.Advance(TimeSpan.FromMinutes(5));
        await _h.AttestJwtAsync(token); // within the skew: validated afresh, not served from the cache

        _h.Time.Advance(_h.Options.ClockSkew);
        await _h.RefusedJwtAsync(token, BrokerErrors.AttestationExpired);

        Assert.Equal(0, _h.Attestor.JwtSvid.Cache.Hits);
    }

    [Fact]
    public async Task Policy_change_drops_cached_proofs()
    {
        var token = _h.Svid();
        await _h.AttestJwtAsync(token);

        _h.Policy.ReplaceTrust([]);

        Assert.Equal(0, _h.Attestor.JwtSvid.Cache.Count);
        await _h.RefusedJwtAsync(token, BrokerErrors.AttestationTrustDomainUnknown);
        Assert.Equal(0, _h.Attestor.JwtSvid.Cache.Hits);
    }

    [Fact]
    public async Task Key_removed_from_the_bundle_stops_vouching_for_cached_proofs_at_the_next_refresh()
    {
        var token = _h.Svid(TimeSpan.FromMinutes(30));
        await _h.AttestJwtAsync(token);

        var oldKid = _h.Domain.KeyId;
        _h.Domain.AddKey("replacement");
        _h.Domain.RemoveKey(oldKid);
        File.WriteAllText(_h.DomainPolicy.JwtBundleFile!, _h.Domain.JwksJson());
        _h.Time.Advance(_h.DomainPolicy.RefreshInterval);

        await _h.RefusedJwtAsync(token, BrokerErrors.AttestationKeyUnknown);
    }

    [Fact]
    public async Task A_validation_that_began_before_a_key_was_removed_is_not_cached()
    {
        var clock = new InterruptingClock();
        using var h = new AttestationHarness(time: clock);
        await h.AttestJwtAsync(h.Svid(claims: c => c["jti"] = "warm-up")); // loads the bundle
        var token = h.Svid(TimeSpan.FromMinutes(30));

        // Reads: the cache lookup, the bundle's freshness check, then the claim check, which runs
        // after the key was found and the signature verified with it. There, another request's
        // refresh brings a bundle without that key (and clears the cache).
        clock.AtRead(3, () =>
        {
            var oldKid = h.Domain.KeyId;
            h.Domain.AddKey("replacement");
            h.Domain.RemoveKey(oldKid);
            File.WriteAllText(h.DomainPolicy.JwtBundleFile!, h.Domain.JwksJson());
            clock.Advance(h.DomainPolicy.RefreshInterval);
            Assert.True(h.Attestor.Trust.TryGetDomain("example.org", out var domain));
            _ = domain.JwtKeys!.GetAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
        });

        await h.AttestJwtAsync(token); // validated with the key it found: this once is allowed

        Assert.Equal(0, h.Attestor.JwtSvid.Cache.Count);
        await h.RefusedJwtAsync(token, BrokerErrors.AttestationKeyUnknown);
        Assert.Equal(0, h.Attestor.JwtSvid.Cache.Hits);
    }

    [Fact]
    public async Task Cache_is_bounded_and_forgets_the_least_recently_used_proof()
    {
        using var h = new AttestationHarness(configure: o => o.ValidatedProofCacheSize = 2);
        var a = h.Svid(claims: c => c["jti"] = "a");
        var b = h.Svid(claims: c => c["jti"] = "b");
        var c = h.Svid(claims: c => c["jti"] = "c");

        await h.AttestJwtAsync(a);
        await h.AttestJwtAsync(b);
        await h.AttestJwtAsync(a);
        await h.AttestJwtAsync(c);
        await h.AttestJwtAsync(b);

        Assert.Equal(2, h.Attestor.JwtSvid.Cache.Count);
        Assert.Equal(1, h.Attestor.JwtSvid.Cache.Hits);
    }

    [Fact]
    public async Task Different_bytes_for_the_same_claims_are_validated_separately()
    {
        var token = _h.Svid();
        await _h.AttestJwtAsync(token);

        await _h.RefusedJwtAsync(Broker.Testing.TokenForger.ZeroSignature(token), BrokerErrors.AttestationSignatureInvalid);
    }

    /// <summary>Short proofs are hashed from the stack, long ones from a pooled buffer: both are SHA-256 of the exact UTF-8 bytes.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(4096)]
    [InlineData(4097)]
    [InlineData(8 * 1024)]
    public void The_digest_is_sha256_of_the_exact_bytes_at_any_length(int length)
    {
        var token = string.Create(length, 0, (chars, _) =>
        {
            for (var i = 0; i < chars.Length; i++)
            {
                chars[i] = (char)('a' + (i % 26));
            }
        });
        var expected = Broker.Core.Attestation.Internal.ProofDigest.From(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(token)));

        Assert.Equal(expected, Broker.Core.Attestation.Internal.ValidatedProofCache.Digest(token));
        Assert.NotEqual(expected, Broker.Core.Attestation.Internal.ValidatedProofCache.Digest(token[..^1] + "\u00e9"));
    }
}
