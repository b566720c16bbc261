using System.Buffers;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Core.Signing;

/// <summary>
/// Compact JWS (RFC 7515) signing with one <see cref="SigningKey"/> for one <c>typ</c>: the
/// protected header <c>{"alg","kid","typ"}</c> is encoded once, and a token costs one string.
/// The bytes are those JsonWebTokenHandler writes for the same header and payload (same member
/// order, same escaping), so validators see no difference.
/// </summary>
internal sealed class CompactJwsSigner
{
    /// <summary>The escaping JsonWebTokenHandler writes JOSE JSON with.</summary>
    public static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly byte[] _encodedHeader;
    private readonly ECDsa _ecdsa;
    private readonly HashAlgorithmName _hash;
    private readonly int _signatureLength;

    public CompactJwsSigner(SigningKey key, string type)
    {
        Key = key;
        _ecdsa = ((ECDsaSecurityKey)key.Credentials.Key).ECDsa;
        (_hash, _signatureLength) = key.Algorithm switch
        {
            SecurityAlgorithms.EcdsaSha256 => (HashAlgorithmName.SHA256, 64),
            SecurityAlgorithms.EcdsaSha384 => (HashAlgorithmName.SHA384, 96),
            var other => throw new ArgumentException($"No compact JWS signing for {other}.", nameof(key)),
        };

        var header = new ArrayBufferWriter<byte>(128);
        using (var writer = new Utf8JsonWriter(header, JsonOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("alg", key.Algorithm);
            writer.WriteString("kid", key.KeyId);
            writer.WriteString("typ", type);
            writer.WriteEndObject();
        }

        _encodedHeader = Encoding.ASCII.GetBytes(Base64Url.EncodeToString(header.WrittenSpan));
    }

    public SigningKey Key { get; }

    /// <summary><c>header.payload.signature</c> for the UTF-8 JSON <paramref name="payload"/>.</summary>
    public string Sign(ReadOnlySpan<byte> payload)
    {
        var signedLength = _encodedHeader.Length + 1 + Base64Url.GetEncodedLength(payload.Length);
        var length = signedLength + 1 + Base64Url.GetEncodedLength(_signatureLength);
        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var token = rented.AsSpan(0, length);
            _encodedHeader.CopyTo(token);
            token[_encodedHeader.Length] = (byte)'.';
            Base64Url.EncodeToUtf8(payload, token[(_encodedHeader.Length + 1)..signedLength]);

            // JWS wants r || s (IEEE P1363), which is what TrySignData writes by default.
            Span<byte> signature = stackalloc byte[_signatureLength];
            if (!_ecdsa.TrySignData(token[..signedLength], signature, _hash, out var written) || written != _signatureLength)
            {
                throw new CryptographicException("The token signature did not fit its expected length.");
            }

            token[signedLength] = (byte)'.';
            Base64Url.EncodeToUtf8(signature, token[(signedLength + 1)..]);
            return Encoding.ASCII.GetString(token);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }
}
