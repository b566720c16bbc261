using System.Buffers.Binary;
using System.Buffers.Text;
using System.Security.Cryptography;

namespace Broker.Core.Issuance;

/// <summary>
/// Server nonces for DPoP proofs (RFC 9449 section 8), stateless so that any node accepts any
/// node's nonce: a nonce is a one-minute time bucket and its HMAC under a secret every node
/// derives from the shared signing keys. A nonce is current for its own minute and the next.
/// </summary>
public sealed class DpopNonces
{
    /// <summary>How long one nonce is handed out; it is accepted for up to twice this.</summary>
    public static readonly TimeSpan Bucket = TimeSpan.FromMinutes(1);

    private const int MacLength = 16;

    private readonly byte[] _key;
    private readonly TimeProvider _time;

    public DpopNonces(byte[] key, TimeProvider time)
    {
        _key = key;
        _time = time;
    }

    /// <summary>The nonce to hand out now (the <c>DPoP-Nonce</c> header).</summary>
    public string Current() => Encode(BucketOf(_time.GetUtcNow()));

    /// <summary>Whether <paramref name="nonce"/> is this cluster's, from this minute or the last.</summary>
    public bool IsCurrent(string nonce)
    {
        Span<byte> bytes = stackalloc byte[8 + MacLength];
        if (nonce.Length != Base64Url.GetEncodedLength(bytes.Length)
            || !Base64Url.TryDecodeFromChars(nonce, bytes, out var written) || written != bytes.Length)
        {
            return false;
        }

        var bucket = BinaryPrimitives.ReadInt64BigEndian(bytes);
        var now = BucketOf(_time.GetUtcNow());
        if (bucket != now && bucket != now - 1)
        {
            return false;
        }

        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(_key, bytes[..8], mac);
        return CryptographicOperations.FixedTimeEquals(mac[..MacLength], bytes[8..]);
    }

    private string Encode(long bucket)
    {
        Span<byte> bytes = stackalloc byte[8 + MacLength];
        BinaryPrimitives.WriteInt64BigEndian(bytes, bucket);
        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(_key, bytes[..8], mac);
        mac[..MacLength].CopyTo(bytes[8..]);
        return Base64Url.EncodeToString(bytes);
    }

    private static long BucketOf(DateTimeOffset at) => at.ToUnixTimeSeconds() / (long)Bucket.TotalSeconds;
}
