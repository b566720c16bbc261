using Broker.V1;

namespace Broker.Client;

/// <summary>
/// Reads the JWT-SVID from a file on every call, e.g. the file SPIRE's spiffe-helper keeps
/// rotated. Re-reading (rather than caching) means a rotated SVID is used as soon as it lands.
/// </summary>
public sealed class FileJwtSvidSource : IAttestationSource
{
    /// <summary>Larger files are refused: a JWT-SVID is a few kilobytes at most.</summary>
    public const int MaxFileBytes = 64 * 1024;

    /// <summary>Reads the SVID from <paramref name="path"/> (surrounding whitespace is ignored).</summary>
    public FileJwtSvidSource(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        Path = System.IO.Path.GetFullPath(path);
    }

    /// <summary>The absolute path of the SVID file.</summary>
    public string Path { get; }

    /// <inheritdoc />
    /// <exception cref="IOException">The file cannot be read.</exception>
    /// <exception cref="InvalidDataException">The file is empty or too large.</exception>
    public async ValueTask<AttestationProof> GetProofAsync(CancellationToken cancellationToken = default)
    {
        // FileShare.ReadWrite | Delete: the rotator may replace the file while we read it.
        await using var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 4096, useAsync: true);
        if (stream.Length > MaxFileBytes)
        {
            throw new InvalidDataException($"SVID file '{Path}' is larger than {MaxFileBytes} bytes.");
        }

        using var reader = new StreamReader(stream);
        var svid = (await reader.ReadToEndAsync(cancellationToken)).Trim();
        if (svid.Length == 0)
        {
            throw new InvalidDataException($"SVID file '{Path}' is empty.");
        }

        return new AttestationProof { JwtSvid = svid };
    }
}
