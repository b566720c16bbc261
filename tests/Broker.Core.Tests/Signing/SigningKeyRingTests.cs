using Broker.Core.Signing;

namespace Broker.Core.Tests.Signing;

public sealed class SigningKeyRingTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan PublishAhead = TimeSpan.FromHours(1);
    private static readonly TimeSpan MaxLifetime = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan Skew = TimeSpan.FromMinutes(1);

    [Fact]
    public void Next_key_is_published_before_it_signs_and_signs_from_its_start()
    {
        var current = SigningKey.Generate(DateTimeOffset.MinValue);
        var next = SigningKey.Generate(T0);
        var ring = new SigningKeyRing([current, next], PublishAhead, MaxLifetime, Skew);

        var beforeAnnounce = T0 - PublishAhead - TimeSpan.FromTicks(1);
        var announced = T0 - PublishAhead;

        Assert.Equal([current.KeyId], ring.Published(beforeAnnounce).Select(k => k.KeyId));
        Assert.Equal([current.KeyId, next.KeyId], ring.Published(announced).Select(k => k.KeyId));
        Assert.Same(current, ring.Active(T0 - TimeSpan.FromTicks(1)));
        Assert.Same(next, ring.Active(T0));
    }

    [Fact]
    public void Retired_key_stays_published_until_its_last_token_expired()
    {
        var old = SigningKey.Generate(DateTimeOffset.MinValue);
        var replacement = SigningKey.Generate(T0);
        var ring = new SigningKeyRing([old, replacement], PublishAhead, MaxLifetime, Skew);

        var lastMomentNeeded = T0 + MaxLifetime + Skew - TimeSpan.FromTicks(1);

        Assert.Contains(old.KeyId, ring.Published(lastMomentNeeded).Select(k => k.KeyId));
        Assert.DoesNotContain(old.KeyId, ring.Published(T0 + MaxLifetime + Skew).Select(k => k.KeyId));
        Assert.Contains(replacement.KeyId, ring.Published(T0 + TimeSpan.FromDays(365)).Select(k => k.KeyId));
    }

    [Fact]
    public void Key_id_is_the_rfc7638_thumbprint_and_jwk_is_public_only()
    {
        var key = SigningKey.Generate(DateTimeOffset.MinValue);

        var expected = Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(key.PublicJwk.ComputeJwkThumbprint());

        Assert.Equal(expected, key.KeyId);
        Assert.Equal("ES256", key.Algorithm);
        Assert.Null(key.PublicJwk.D);
        Assert.Equal("sig", key.PublicJwk.Use);
    }

    [Fact]
    public void No_active_key_before_the_first_starts()
    {
        var ring = new SigningKeyRing([SigningKey.Generate(T0)], PublishAhead, MaxLifetime, Skew);

        Assert.Throws<InvalidOperationException>(() => ring.Active(T0 - TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public void Same_key_twice_is_refused()
    {
        using var ecdsa = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);

        Assert.Throws<ArgumentException>(() => new SigningKeyRing(
            [SigningKey.Create(ecdsa, DateTimeOffset.MinValue), SigningKey.Create(ecdsa, T0)], PublishAhead, MaxLifetime, Skew));
    }

    [Fact]
    public void Rsa_or_unsupported_curves_are_refused()
    {
        using var p521 = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP521);

        Assert.Throws<ArgumentException>(() => SigningKey.Create(p521, T0));
    }
}
