using System.Text.Json;

namespace Broker.Core.Audit;

/// <summary>Finding segments and checkpoints on disk.</summary>
public static class AuditFiles
{
    /// <summary>One node's segments in a folder, oldest first.</summary>
    public static List<(long Number, string Path)> Segments(string directory, string node) =>
        All(directory).Where(s => s.Node == node).Select(s => (s.Number, s.Path)).ToList();

    /// <summary>Every segment in a folder, by node then number.</summary>
    public static List<AuditSegmentFile> All(string directory)
    {
        var found = new List<AuditSegmentFile>();
        foreach (var path in System.IO.Directory.EnumerateFiles(directory, AuditChain.SegmentPrefix + "*" + AuditChain.SegmentSuffix))
        {
            if (AuditChain.TryParseSegmentFileName(Path.GetFileName(path), out var node, out var number))
            {
                found.Add(new AuditSegmentFile(node, number, path));
            }
        }

        found.Sort(static (a, b) => a.Node != b.Node ? string.CompareOrdinal(a.Node, b.Node) : a.Number.CompareTo(b.Number));
        return found;
    }

    /// <summary>The checkpoint file's content, or null when it cannot be read as one.</summary>
    public static AuditCheckpoint? TryReadCheckpoint(string path) => TryReadCheckpoint(path, out _);

    /// <summary>As <see cref="TryReadCheckpoint(string)"/>; <paramref name="canonical"/> says whether the file is exactly what the sink writes for it.</summary>
    public static AuditCheckpoint? TryReadCheckpoint(string path, out bool canonical)
    {
        canonical = false;
        try
        {
            var bytes = File.ReadAllBytes(path);
            var checkpoint = JsonSerializer.Deserialize(bytes, AuditJsonContext.Default.AuditCheckpoint);
            canonical = checkpoint is not null && bytes.AsSpan().SequenceEqual(AuditChain.CheckpointFileBytes(checkpoint));
            return checkpoint;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}

public sealed record AuditSegmentFile(string Node, long Number, string Path)
{
    public string CheckpointPath => System.IO.Path.Combine(System.IO.Path.GetDirectoryName(Path)!, AuditChain.CheckpointFileName(Node, Number));
}

/// <summary>What a segment holds, read at start to seal a segment a crash left open.</summary>
public sealed record AuditSegmentSummary(long Count, long FirstSeq, string? FirstPrev, long LastSeq, string? LastHash, long TornBytes)
{
    public static AuditSegmentSummary Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var span = bytes.AsSpan();
        long count = 0;
        long firstSeq = 0;
        long lastSeq = 0;
        string? firstPrev = null;
        var lastStart = -1;
        var lastLength = 0;
        var offset = 0;
        while (offset < span.Length)
        {
            var end = span[offset..].IndexOf((byte)'\n');
            if (end < 0)
            {
                break;
            }

            var line = span.Slice(offset, end);
            if (!AuditRecordHeader.TryRead(line, out var header))
            {
                throw new InvalidDataException($"Audit segment '{path}' is damaged at line {count + 1}; run 'brokerctl audit verify' on it and move it aside to start.");
            }

            if (count == 0)
            {
                firstSeq = header.Seq;
                firstPrev = header.Prev;
            }

            lastSeq = header.Seq;
            lastStart = offset;
            lastLength = end;
            count++;
            offset += end + 1;
        }

        var lastHash = lastStart < 0 ? null : AuditChain.Hash(span.Slice(lastStart, lastLength));
        return new AuditSegmentSummary(count, firstSeq, firstPrev, lastSeq, lastHash, span.Length - offset);
    }
}
