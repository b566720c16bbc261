using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Broker.Core.Audit;

/// <summary>
/// The signed head of one node's chain: its newest durable record (seq and hash) and the segment
/// holding it. Published off the host as the chain advances, so that deleting the newest records,
/// or the newest segment with its checkpoint, leaves a log that no longer reaches its head.
/// </summary>
public sealed record AuditHead
{
    public required string Node { get; init; }

    public required long Seq { get; init; }

    /// <summary>SHA-256 (hex) of record <see cref="Seq"/>; 64 zeros for an empty chain.</summary>
    public required string Hash { get; init; }

    /// <summary>Number of the segment holding record <see cref="Seq"/>.</summary>
    public required long Segment { get; init; }

    public required DateTimeOffset Time { get; init; }

    public string? KeyId { get; init; }

    /// <summary>The signer's public key (SubjectPublicKeyInfo, base64).</summary>
    public string? PublicKey { get; init; }

    /// <summary>ES256 (r||s) over <see cref="AuditHeads.Payload"/>, base64, by the audit checkpoint key.</summary>
    public string? Signature { get; init; }
}

/// <summary>Signing, checking and reading chain heads (one JSON object per head; files may hold several, one per line or as an array).</summary>
public static class AuditHeads
{
    /// <summary>Domain separation: a head signature can never pass for a checkpoint's, nor the other way round.</summary>
    private const string Context = "broker.audit.head.v1";

    public static byte[] Payload(AuditHead head) => Encoding.UTF8.GetBytes(string.Join(
        '\n',
        Context,
        head.Node,
        head.Seq.ToString(CultureInfo.InvariantCulture),
        head.Hash,
        head.Segment.ToString(CultureInfo.InvariantCulture),
        AuditChain.FormatTime(head.Time)) + "\n");

    public static AuditHead Sign(AuditHead head, ECDsa key) => head with
    {
        KeyId = AuditChain.KeyId(key),
        PublicKey = Convert.ToBase64String(key.ExportSubjectPublicKeyInfo()),
        Signature = Convert.ToBase64String(key.SignData(Payload(head), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation)),
    };

    /// <summary>Checks the signature against <paramref name="key"/>, or the key the head names when none is pinned.</summary>
    public static bool SignatureValid(AuditHead head, ECDsa? key)
    {
        try
        {
            var signature = Convert.FromBase64String(head.Signature ?? "");
            if (key is not null)
            {
                return head.KeyId == AuditChain.KeyId(key)
                    && key.VerifyData(Payload(head), signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
            }

            using var embedded = ECDsa.Create();
            embedded.ImportSubjectPublicKeyInfo(Convert.FromBase64String(head.PublicKey ?? ""), out _);
            return head.KeyId == AuditChain.KeyId(embedded)
                && embedded.VerifyData(Payload(head), signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        }
        catch (Exception ex) when (ex is FormatException or CryptographicException)
        {
            return false;
        }
    }

    public static string ToJson(AuditHead head) => JsonSerializer.Serialize(head, AuditJsonContext.Default.AuditHead);

    /// <summary>One head as JSON, or null when it is not one.</summary>
    public static AuditHead? TryParse(string json)
    {
        try
        {
            return JsonSerializer.Deserialize(json, AuditJsonContext.Default.AuditHead);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or NotSupportedException)
        {
            return null;
        }
    }

    /// <summary>Heads from a file: a JSON array, or one JSON object per line (as <c>brokerctl audit head</c> prints them).</summary>
    /// <exception cref="InvalidDataException">The file holds something else.</exception>
    public static List<AuditHead> ReadFile(string path)
    {
        var text = File.ReadAllText(path).Trim();
        if (text.StartsWith('['))
        {
            try
            {
                return JsonSerializer.Deserialize(text, AuditJsonContext.Default.ListAuditHead) ?? [];
            }
            catch (Exception ex) when (ex is JsonException or InvalidOperationException or NotSupportedException)
            {
                throw new InvalidDataException($"'{path}' is not a list of signed audit heads: {ex.Message}");
            }
        }

        var heads = new List<AuditHead>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            heads.Add(TryParse(line) ?? throw new InvalidDataException($"'{path}' holds a line that is not a signed audit head."));
        }

        return heads;
    }
}
