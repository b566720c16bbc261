using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Broker.Cli.Internal;

/// <summary>
/// Builds the compact JWS brokerctl mints (dev JWT-SVIDs, operator tokens) by hand, so no
/// library adds a header or claim the real issuer (SPIRE, an IdP) would not send.
/// </summary>
internal static class CompactJwsWriter
{
    /// <summary>Loads a PEM EC private key, with errors that say which key and what to do.</summary>
    public static ECDsa LoadKey(string path, string what)
    {
        var pem = ReadPem(path, what);
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
            return key;
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException)
        {
            key.Dispose();
            throw CliException.Local($"'{path}' is not a PEM EC private key.");
        }
    }

    /// <summary>Reads a PEM file, with errors that say which key it was meant to be.</summary>
    public static string ReadPem(string path, string what)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw CliException.Local($"cannot read the {what} '{path}': {ex.Message}");
        }
    }

    /// <summary>A JSON object written by <paramref name="write"/>, as UTF-8 bytes.</summary>
    public static byte[] Json(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            write(writer);
            writer.WriteEndObject();
        }

        return buffer.ToArray();
    }

    /// <summary>Signs header and claims as a compact JWS with ES256.</summary>
    public static string SignEs256(ECDsa key, byte[] header, byte[] claims)
    {
        var signingInput = SigningInput(header, claims);
        // .NET signs ECDSA in IEEE P1363 form (r || s), which is exactly JWS's ES256 encoding.
        var signature = key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256);
        return signingInput + "." + Base64Url.EncodeToString(signature);
    }

    /// <summary>Signs header and claims as a compact JWS with RS256 (RSASSA-PKCS1-v1_5, SHA-256).</summary>
    public static string SignRs256(RSA key, byte[] header, byte[] claims)
    {
        var signingInput = SigningInput(header, claims);
        var signature = key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return signingInput + "." + Base64Url.EncodeToString(signature);
    }

    private static string SigningInput(byte[] header, byte[] claims) => Base64Url.EncodeToString(header) + "." + Base64Url.EncodeToString(claims);
}
