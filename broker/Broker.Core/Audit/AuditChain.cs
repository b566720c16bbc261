using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Broker.Core.Audit;

/// <summary>
/// The tamper-evident layout shared by the writer and the verifier. Each record is one JSON line
/// that starts with <c>{"seq":N,"node":"ID","prev":"HEX",</c>; <c>prev</c> is the SHA-256 of the
/// previous record's exact bytes (without its newline). Segments are files named
/// <c>audit-NODE-NNNNNNNN.log</c>; a closed segment has a signed <c>.checkpoint</c> file next to it
/// and the next segment starts with an <c>audit.checkpoint</c> record carrying the same summary.
/// </summary>
public static partial class AuditChain
{
    /// <summary>The <c>prev</c> of a node's very first record.</summary>
    public static readonly string Genesis = new('0', 64);

    public const string SegmentPrefix = "audit-";
    public const string SegmentSuffix = ".log";
    public const string CheckpointSuffix = ".checkpoint";

    /// <summary>Domain separation for checkpoint signatures, so they can never be mistaken for anything else signed with the key.</summary>
    private const string CheckpointContext = "broker.audit.checkpoint.v2";

    /// <summary>Checkpoints written before <c>sealed_at</c> was signed; still verified, never written.</summary>
    private const string LegacyCheckpointContext = "broker.audit.checkpoint.v1";

    /// <summary>Node ids go into file names and, unescaped, into every record.</summary>
    public static bool IsValidNodeId(string? node) => node is not null && NodeIdPattern().IsMatch(node);

    public static string SegmentFileName(string node, long segment) =>
        string.Create(CultureInfo.InvariantCulture, $"{SegmentPrefix}{node}-{segment:D8}{SegmentSuffix}");

    public static string CheckpointFileName(string node, long segment) =>
        string.Create(CultureInfo.InvariantCulture, $"{SegmentPrefix}{node}-{segment:D8}{CheckpointSuffix}");

    /// <summary>Parses <c>audit-NODE-NNNNNNNN.log</c>.</summary>
    public static bool TryParseSegmentFileName(string fileName, out string node, out long segment)
    {
        var match = SegmentNamePattern().Match(fileName);
        if (!match.Success)
        {
            node = "";
            segment = 0;
            return false;
        }

        node = match.Groups["node"].Value;
        segment = long.Parse(match.Groups["segment"].ValueSpan, CultureInfo.InvariantCulture);
        return true;
    }

    /// <summary>SHA-256 of a record's bytes (without the newline), lower-case hex.</summary>
    public static string Hash(ReadOnlySpan<byte> record)
    {
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(record, digest);
        return Convert.ToHexStringLower(digest);
    }

    /// <summary>
    /// Builds the chained line from an event serialized without seq/node/prev:
    /// <c>{"seq":N,"node":"ID","prev":"HEX",</c> + the event's own properties + newline.
    /// </summary>
    public static int Splice(Span<byte> destination, long seq, string node, string prev, ReadOnlySpan<byte> eventJson)
    {
        var written = Encoding.UTF8.GetBytes(
            string.Create(CultureInfo.InvariantCulture, $"{{\"seq\":{seq},\"node\":\"{node}\",\"prev\":\"{prev}\","),
            destination);
        var body = eventJson[1..];
        body.CopyTo(destination[written..]);
        written += body.Length;
        destination[written++] = (byte)'\n';
        return written;
    }

    /// <summary>Upper bound of <see cref="Splice"/>'s output.</summary>
    public static int SplicedLength(string node, ReadOnlySpan<byte> eventJson) => 48 + node.Length + 64 + eventJson.Length;

    /// <summary>The exact bytes a checkpoint signature covers (every field but the key and signature).</summary>
    public static byte[] CheckpointPayload(AuditCheckpoint checkpoint) => Payload(checkpoint, CheckpointContext);

    private static byte[] Payload(AuditCheckpoint checkpoint, string context)
    {
        var lines = new List<string>
        {
            context,
            checkpoint.Node,
            checkpoint.Segment,
            checkpoint.FirstSeq.ToString(CultureInfo.InvariantCulture),
            checkpoint.LastSeq.ToString(CultureInfo.InvariantCulture),
            checkpoint.Count.ToString(CultureInfo.InvariantCulture),
            checkpoint.StartPrev,
            checkpoint.LastHash,
        };
        if (context == CheckpointContext)
        {
            lines.Add(checkpoint.SealedAt is { } sealedAt ? FormatTime(sealedAt) : "");
        }

        return Encoding.UTF8.GetBytes(string.Join('\n', lines) + "\n");
    }

    /// <summary>A time as signed: UTC, RFC 3339 with seven fractional digits.</summary>
    public static string FormatTime(DateTimeOffset time) =>
        time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    /// <summary>Key id of an audit checkpoint key: SHA-256 of its SubjectPublicKeyInfo, hex.</summary>
    public static string KeyId(ECDsa key) => Convert.ToHexStringLower(SHA256.HashData(key.ExportSubjectPublicKeyInfo()));

    public static AuditCheckpoint Sign(AuditCheckpoint summary, ECDsa key)
    {
        var signature = key.SignData(CheckpointPayload(summary), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return summary with
        {
            KeyId = KeyId(key),
            PublicKey = Convert.ToBase64String(key.ExportSubjectPublicKeyInfo()),
            Signature = Convert.ToBase64String(signature),
        };
    }

    /// <summary>Checks the signature against <paramref name="key"/>, or against the key the checkpoint names when none is pinned.</summary>
    public static bool SignatureValid(AuditCheckpoint checkpoint, ECDsa? key)
    {
        try
        {
            if (string.IsNullOrEmpty(checkpoint.Signature))
            {
                return false;
            }

            var signature = Convert.FromBase64String(checkpoint.Signature);
            if (key is not null)
            {
                // The named key must be the pinned one, so no byte of the checkpoint goes unchecked.
                return checkpoint.PublicKey == Convert.ToBase64String(key.ExportSubjectPublicKeyInfo())
                    && checkpoint.KeyId == KeyId(key)
                    && SignedBy(key, checkpoint, signature);
            }

            using var embedded = ECDsa.Create();
            embedded.ImportSubjectPublicKeyInfo(Convert.FromBase64String(checkpoint.PublicKey ?? ""), out _);
            return checkpoint.KeyId == KeyId(embedded) && SignedBy(embedded, checkpoint, signature);
        }
        catch (Exception ex) when (ex is FormatException or CryptographicException)
        {
            return false;
        }
    }

    private static bool SignedBy(ECDsa key, AuditCheckpoint checkpoint, byte[] signature) =>
        key.VerifyData(Payload(checkpoint, CheckpointContext), signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation)
        || key.VerifyData(Payload(checkpoint, LegacyCheckpointContext), signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);

    /// <summary>A checkpoint file's exact bytes: compact JSON and one newline, as the sink writes it.</summary>
    public static byte[] CheckpointFileBytes(AuditCheckpoint checkpoint) =>
        [.. System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(checkpoint, AuditJsonContext.Default.AuditCheckpoint), (byte)'\n'];

    [GeneratedRegex("^[A-Za-z0-9._-]{1,64}$")]
    private static partial Regex NodeIdPattern();

    [GeneratedRegex(@"^audit-(?<node>[A-Za-z0-9._-]{1,64})-(?<segment>[0-9]{8})\.log$")]
    private static partial Regex SegmentNamePattern();
}

/// <summary>The signed summary of one closed segment.</summary>
public sealed record AuditCheckpoint
{
    public required string Node { get; init; }

    /// <summary>File name of the segment, e.g. <c>audit-node-a-00000003.log</c>.</summary>
    public required string Segment { get; init; }

    /// <summary>Seq of the segment's first record (<see cref="LastSeq"/> + 1 when it holds none).</summary>
    public required long FirstSeq { get; init; }

    public required long LastSeq { get; init; }

    /// <summary>Complete records in the segment.</summary>
    public required long Count { get; init; }

    /// <summary>The <c>prev</c> the segment starts from: the last hash of the segment before it.</summary>
    public required string StartPrev { get; init; }

    /// <summary>Hash of the segment's last record (<see cref="StartPrev"/> when it holds none).</summary>
    public required string LastHash { get; init; }

    public DateTimeOffset? SealedAt { get; init; }

    public string? KeyId { get; init; }

    /// <summary>The signer's public key (SubjectPublicKeyInfo, base64), for verifiers without a pinned key.</summary>
    public string? PublicKey { get; init; }

    /// <summary>ES256 (P-256, SHA-256, r||s) over <see cref="AuditChain.CheckpointPayload"/>, base64.</summary>
    public string? Signature { get; init; }
}
