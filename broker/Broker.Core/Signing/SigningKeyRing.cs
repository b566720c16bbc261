using Microsoft.IdentityModel.Tokens;

namespace Broker.Core.Signing;

/// <summary>
/// The signing keys over time. Each key signs from its <see cref="SigningKey.NotBefore"/> until
/// the next key's. A key is published in JWKS <see cref="PublishAhead"/> before it signs, so
/// resource servers have it before the first token it signs; and it stays published until the
/// last token it signed has expired (its successor's start + max token lifetime + skew).
/// Everything derives from the clock: rotating is adding a key with a future NotBefore and a
/// rolling restart; the switch itself happens on time, on every node at once.
/// </summary>
public sealed class SigningKeyRing
{
    private readonly SigningKey[] _keys;
    private readonly TimeSpan _retainAfter;

    public SigningKeyRing(IEnumerable<SigningKey> keys, TimeSpan publishAhead, TimeSpan maxTokenLifetime, TimeSpan clockSkew)
    {
        _keys = keys.OrderBy(k => k.NotBefore).ToArray();
        if (_keys.Length == 0)
        {
            throw new ArgumentException("At least one signing key is required.", nameof(keys));
        }

        if (_keys.Select(k => k.KeyId).Distinct(StringComparer.Ordinal).Count() != _keys.Length)
        {
            throw new ArgumentException("The same signing key is configured twice.", nameof(keys));
        }

        PublishAhead = publishAhead;
        _retainAfter = maxTokenLifetime + clockSkew;
    }

    public TimeSpan PublishAhead { get; }

    /// <summary>How long a retired key stays published after its successor starts signing: the longest token lifetime plus skew.</summary>
    public TimeSpan RetainAfterRetirement => _retainAfter;

    /// <summary>
    /// A secret every node of a cluster shares (they load the same keys), derived from the
    /// earliest key: adding the next key for a rotation leaves it unchanged.
    /// </summary>
    public byte[] DeriveSharedSecret(string purpose) => _keys[0].DeriveSecret(purpose);

    /// <summary>The key that signs at <paramref name="now"/>; fails when none has started yet.</summary>
    public SigningKey Active(DateTimeOffset now)
    {
        SigningKey? active = null;
        foreach (var key in _keys)
        {
            if (key.NotBefore <= now)
            {
                active = key;
            }
        }

        return active ?? throw new InvalidOperationException("No signing key is active yet: the earliest key's not_before is in the future.");
    }

    /// <summary>The keys a resource server must know at <paramref name="now"/>: next, active and not-yet-expired retired ones.</summary>
    public IReadOnlyList<JsonWebKey> Published(DateTimeOffset now)
    {
        var published = new List<JsonWebKey>(_keys.Length);
        for (var i = 0; i < _keys.Length; i++)
        {
            var startsSigning = _keys[i].NotBefore;
            var stopsSigning = i + 1 < _keys.Length ? _keys[i + 1].NotBefore : DateTimeOffset.MaxValue;
            var announced = startsSigning <= now + PublishAhead;
            var stillNeeded = stopsSigning == DateTimeOffset.MaxValue || now < stopsSigning + _retainAfter;
            if (announced && stillNeeded)
            {
                published.Add(_keys[i].PublicJwk);
            }
        }

        return published;
    }
}
