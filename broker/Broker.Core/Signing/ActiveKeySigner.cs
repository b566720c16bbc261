namespace Broker.Core.Signing;

/// <summary>
/// Signs compact JWS of one <c>typ</c> with the ring's key active at the signing time. The
/// <see cref="CompactJwsSigner"/> for that key is kept until a rotation makes another key active.
/// </summary>
internal sealed class ActiveKeySigner(SigningKeyRing keys, string type)
{
    private volatile CompactJwsSigner? _signer;

    public string Sign(DateTimeOffset at, ReadOnlySpan<byte> payload) => SignerFor(keys.Active(at)).Sign(payload);

    // A race at a rotation builds a second equal signer, harmlessly.
    private CompactJwsSigner SignerFor(SigningKey key)
    {
        var signer = _signer;
        if (signer is null || !ReferenceEquals(signer.Key, key))
        {
            _signer = signer = new CompactJwsSigner(key, type);
        }

        return signer;
    }
}
