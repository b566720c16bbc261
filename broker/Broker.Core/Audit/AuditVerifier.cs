using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;

namespace Broker.Core.Audit;

/// <summary>Where verification first failed: the record (or checkpoint) to look at, and why.</summary>
public sealed record AuditProblem(string File, long Line, long? Seq, string What)
{
    public override string ToString() => Seq is { } seq
        ? string.Create(CultureInfo.InvariantCulture, $"{File}:{Line}: seq {seq}: {What}")
        : string.Create(CultureInfo.InvariantCulture, $"{File}:{Line}: {What}");
}

public sealed class AuditVerifyResult
{
    public bool Ok => Problem is null;

    /// <summary>The first bad record; null when everything verified.</summary>
    public AuditProblem? Problem { get; internal set; }

    /// <summary>Things that are not tampering but limit what was proven (torn tail after a crash, open segment, unpinned key).</summary>
    public List<string> Notes { get; } = [];

    public long Records { get; internal set; }

    public int Segments { get; internal set; }

    public int Checkpoints { get; internal set; }

    public List<string> Nodes { get; } = [];
}

/// <summary>
/// Checks one or more nodes' audit segments: every record is well-formed, names its node, has
/// the next seq and the hash of the record before it; segments follow each other without gaps;
/// each closed segment matches its signed checkpoint (file and in-log record). Stops at the
/// first bad record and names it. A torn last line (crash mid-write) is reported as a note, not
/// as tampering: it was never acknowledged to anyone.
/// </summary>
public static class AuditVerifier
{
    public static AuditVerifyResult Verify(IEnumerable<string> paths, ECDsa? checkpointKey = null)
    {
        var files = new Dictionary<string, AuditSegmentFile>(StringComparer.Ordinal);
        var orphans = new List<string>();
        foreach (var path in paths)
        {
            if (Directory.Exists(path))
            {
                foreach (var segment in AuditFiles.All(path))
                {
                    files[Path.GetFullPath(segment.Path)] = segment;
                }

                // A checkpoint whose segment is gone: the whole segment was deleted.
                foreach (var checkpoint in Directory.EnumerateFiles(path, AuditChain.SegmentPrefix + "*" + AuditChain.CheckpointSuffix))
                {
                    var segmentName = Path.GetFileName(checkpoint)[..^AuditChain.CheckpointSuffix.Length] + AuditChain.SegmentSuffix;
                    if (!File.Exists(Path.Combine(path, segmentName)))
                    {
                        orphans.Add(checkpoint);
                    }
                }
            }
            else if (File.Exists(path))
            {
                if (path.EndsWith(AuditChain.CheckpointSuffix, StringComparison.Ordinal))
                {
                    continue; // checkpoints are found next to their segments
                }

                if (!AuditChain.TryParseSegmentFileName(Path.GetFileName(path), out var node, out var number))
                {
                    throw new ArgumentException($"'{path}' is not an audit segment (audit-NODE-NNNNNNNN.log).");
                }

                files[Path.GetFullPath(path)] = new AuditSegmentFile(node, number, Path.GetFullPath(path));
            }
            else
            {
                throw new FileNotFoundException($"'{path}' does not exist.", path);
            }
        }

        var result = new AuditVerifyResult();
        if (orphans.Count > 0)
        {
            orphans.Sort(StringComparer.Ordinal);
            result.Problem = new AuditProblem(orphans[0], 1, null, "the segment this checkpoint signs is missing (deleted)");
            return result;
        }
        if (checkpointKey is null)
        {
            result.Notes.Add("checkpoint signatures were checked against the key each checkpoint names; pass the audit public key to prove who signed them");
        }

        foreach (var node in files.Values.GroupBy(f => f.Node).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            result.Nodes.Add(node.Key);
            var chain = new NodeChain(node.Key, checkpointKey, result);
            foreach (var segment in node.OrderBy(s => s.Number))
            {
                if (!chain.Segment(segment))
                {
                    return result;
                }
            }

            chain.Finish();
        }

        return result;
    }

    private sealed class NodeChain(string node, ECDsa? key, AuditVerifyResult result)
    {
        private long? _expectedSeq;
        private string? _expectedPrev;
        private (string File, long Line, long Seq)? _lastRecord;
        private AuditSegmentFile? _previous;
        private AuditCheckpoint? _previousSummary;
        private bool _previousSealed;

        public bool Segment(AuditSegmentFile segment)
        {
            result.Segments++;
            var file = segment.Path;
            if (_previous is null)
            {
                if (segment.Number == 1)
                {
                    _expectedSeq = 1;
                    _expectedPrev = AuditChain.Genesis;
                }
                else
                {
                    result.Notes.Add($"node {node}: the chain starts at segment {segment.Number:D8}; earlier segments were not given and are not checked");
                }
            }
            else if (segment.Number != _previous.Number + 1)
            {
                return Fail(file, 1, null, string.Create(CultureInfo.InvariantCulture, $"segment {_previous.Number + 1:D8} of node {node} is missing (deleted or renamed)"));
            }

            var bytes = File.ReadAllBytes(file);
            var span = bytes.AsSpan();
            var sidecarPath = segment.CheckpointPath;
            var sidecarCanonical = false;
            var sidecar = File.Exists(sidecarPath) ? AuditFiles.TryReadCheckpoint(sidecarPath, out sidecarCanonical) : null;
            if (File.Exists(sidecarPath) && sidecar is null)
            {
                return Fail(sidecarPath, 1, null, "checkpoint file is not readable (altered)");
            }

            long count = 0;
            long firstSeq = 0;
            string? firstPrev = null;
            var offset = 0;
            long line = 0;
            while (offset < span.Length)
            {
                var end = span[offset..].IndexOf((byte)'\n');
                if (end < 0)
                {
                    break;
                }

                line++;
                var record = span.Slice(offset, end);
                var nextOffset = offset + end + 1;
                if (!AuditRecordHeader.TryRead(record, out var header))
                {
                    return Fail(file, line, null, "not a well-formed audit record (edited, truncated or corrupted)");
                }

                if (header.Node != node)
                {
                    return Fail(file, line, header.Seq, $"record names node '{header.Node}' but the segment belongs to node '{node}' (swapped segment)");
                }

                if (line == 1 && (segment.Number > 1 || _previous is not null))
                {
                    if (header.EventId != AuditEventTypes.AuditCheckpoint.Id)
                    {
                        return Fail(file, line, header.Seq, "segment does not start with the checkpoint of the segment before it (swapped or replaced segment)");
                    }

                    if (!CheckpointRecord(segment, record, header, line))
                    {
                        return false;
                    }
                }
                else if (header.EventId == AuditEventTypes.AuditCheckpoint.Id)
                {
                    return Fail(file, line, header.Seq, "checkpoint record in the middle of a segment (records reordered or spliced)");
                }

                if (_expectedSeq is { } expected && header.Seq != expected)
                {
                    return Fail(file, line, header.Seq, header.Seq > expected && !AppearsLater(span, nextOffset, expected)
                        ? string.Create(CultureInfo.InvariantCulture, $"seq {header.Seq} follows seq {expected - 1}: record(s) {expected}..{header.Seq - 1} missing (deleted)")
                        : string.Create(CultureInfo.InvariantCulture, $"seq {header.Seq} follows seq {expected - 1}: records reordered or duplicated"));
                }

                var hash = AuditChain.Hash(record);
                if (_expectedPrev is { } prev && header.Prev != prev)
                {
                    // Either the record before changed after this one was written, or this record's own bytes changed:
                    // whichever the record after this one still agrees with is intact.
                    var nextClaim = NextPrevClaim(span, nextOffset, sidecar);
                    if (nextClaim == hash && _lastRecord is { } before)
                    {
                        return Fail(before.File, before.Line, before.Seq, "record altered: its hash no longer matches the prev stored in the record after it");
                    }

                    return Fail(file, line, header.Seq, "record altered: prev does not match the hash of the record before it");
                }

                if (count == 0)
                {
                    firstSeq = header.Seq;
                    firstPrev = header.Prev;
                }

                count++;
                result.Records++;
                _expectedSeq = header.Seq + 1;
                _expectedPrev = hash;
                _lastRecord = (file, line, header.Seq);
                offset = nextOffset;
            }

            if (offset < span.Length)
            {
                result.Notes.Add(string.Create(CultureInfo.InvariantCulture, $"{file}:{line + 1}: truncated tail after last durable record ({span.Length - offset} bytes of a record cut off by a crash; never acknowledged)"));
            }

            var summary = new AuditCheckpoint
            {
                Node = node,
                Segment = Path.GetFileName(file),
                FirstSeq = count == 0 ? (_expectedSeq ?? 1) : firstSeq,
                LastSeq = count == 0 ? (_expectedSeq ?? 1) - 1 : firstSeq + count - 1,
                Count = count,
                StartPrev = count == 0 ? _expectedPrev ?? "" : firstPrev!,
                LastHash = _expectedPrev ?? "",
            };

            if (sidecar is not null)
            {
                if (!Checkpoint(sidecarPath, sidecar, summary, file, line))
                {
                    return false;
                }

                // Same content, other bytes (whitespace, escapes): the file was edited all the same.
                if (!sidecarCanonical)
                {
                    return Fail(sidecarPath, 1, null, "checkpoint file is not byte for byte as the broker wrote it (altered)");
                }
            }

            _previous = segment;
            _previousSummary = summary;
            _previousSealed = sidecar is not null;
            return true;
        }

        public void Finish()
        {
            if (_previous is not null && !_previousSealed)
            {
                result.Notes.Add($"node {node}: segment {Path.GetFileName(_previous.Path)} is still open (no checkpoint yet): its records are chained but its end is not yet signed");
            }
        }

        /// <summary>The first record of a later segment carries the signed checkpoint of the segment before it.</summary>
        private bool CheckpointRecord(AuditSegmentFile segment, ReadOnlySpan<byte> record, AuditRecordHeader header, long line)
        {
            AuditEvent? auditEvent;
            try
            {
                auditEvent = JsonSerializer.Deserialize(record, AuditJsonContext.Default.AuditEvent);
            }
            catch (Exception ex) when (ex is JsonException or InvalidOperationException)
            {
                auditEvent = null;
            }

            if (auditEvent?.Checkpoint is not { } checkpoint)
            {
                return Fail(segment.Path, line, header.Seq, "checkpoint record carries no checkpoint");
            }

            if (!SignatureOk(checkpoint, out var why))
            {
                return Fail(segment.Path, line, header.Seq, "checkpoint record " + why);
            }

            if (_previousSummary is { } previous)
            {
                if (!Same(checkpoint, previous))
                {
                    return Fail(segment.Path, line, header.Seq, $"checkpoint record does not match segment {previous.Segment} as found (that segment was changed, or this one swapped in)");
                }
            }
            else
            {
                // The chain starts here: the checkpoint says where it continues from.
                _expectedSeq = checkpoint.LastSeq + 1;
                _expectedPrev = checkpoint.LastHash;
            }

            result.Checkpoints++;
            return true;
        }

        private bool Checkpoint(string sidecarPath, AuditCheckpoint checkpoint, AuditCheckpoint found, string file, long lines)
        {
            if (!SignatureOk(checkpoint, out var why))
            {
                return Fail(sidecarPath, 1, null, "checkpoint " + why);
            }

            if (checkpoint.Node != found.Node || checkpoint.Segment != found.Segment)
            {
                return Fail(file, 1, null, $"segment is not the one its checkpoint signs ({checkpoint.Segment}): swapped or renamed");
            }

            if (checkpoint.FirstSeq != found.FirstSeq || checkpoint.StartPrev != found.StartPrev)
            {
                return Fail(file, 1, found.FirstSeq, "segment does not start where its signed checkpoint says (swapped or replaced)");
            }

            if (found.Count < checkpoint.Count)
            {
                return Fail(file, lines + 1, found.LastSeq + 1, string.Create(CultureInfo.InvariantCulture, $"segment truncated: it ends at seq {found.LastSeq}, its signed checkpoint at seq {checkpoint.LastSeq}"));
            }

            if (found.Count > checkpoint.Count)
            {
                return Fail(file, checkpoint.Count + 1, checkpoint.LastSeq + 1, "record(s) after the signed end of the segment (appended after it was sealed)");
            }

            if (checkpoint.LastHash != found.LastHash || checkpoint.LastSeq != found.LastSeq)
            {
                return _lastRecord is { } last
                    ? Fail(last.File, last.Line, last.Seq, "record altered: its hash does not match the segment's signed checkpoint")
                    : Fail(sidecarPath, 1, null, "checkpoint does not match the segment");
            }

            result.Checkpoints++;
            return true;
        }

        private bool SignatureOk(AuditCheckpoint checkpoint, out string why)
        {
            if (key is not null && checkpoint.KeyId != AuditChain.KeyId(key))
            {
                why = $"is signed by key {checkpoint.KeyId}, not the audit key given (forged)";
                return false;
            }

            if (!AuditChain.SignatureValid(checkpoint, key))
            {
                why = "signature is invalid (forged or altered)";
                return false;
            }

            why = "";
            return true;
        }

        private static bool Same(AuditCheckpoint a, AuditCheckpoint b) =>
            a.Node == b.Node && a.Segment == b.Segment && a.FirstSeq == b.FirstSeq && a.LastSeq == b.LastSeq
            && a.Count == b.Count && a.StartPrev == b.StartPrev && a.LastHash == b.LastHash;

        /// <summary>Whether the record with <paramref name="seq"/> sits further down the segment (moved, not deleted).</summary>
        private static bool AppearsLater(ReadOnlySpan<byte> span, int offset, long seq)
        {
            while (offset < span.Length)
            {
                var end = span[offset..].IndexOf((byte)'\n');
                if (end < 0)
                {
                    return false;
                }

                if (AuditRecordHeader.TryRead(span.Slice(offset, end), out var header) && header.Seq == seq)
                {
                    return true;
                }

                offset += end + 1;
            }

            return false;
        }

        /// <summary>The prev the next record (or the segment's checkpoint) claims for the record before it.</summary>
        private static string? NextPrevClaim(ReadOnlySpan<byte> span, int nextOffset, AuditCheckpoint? sidecar)
        {
            if (nextOffset < span.Length)
            {
                var end = span[nextOffset..].IndexOf((byte)'\n');
                if (end >= 0 && AuditRecordHeader.TryRead(span.Slice(nextOffset, end), out var next))
                {
                    return next.Prev;
                }

                return null;
            }

            return sidecar?.LastHash;
        }

        private bool Fail(string file, long line, long? seq, string what)
        {
            result.Problem = new AuditProblem(file, line, seq, what);
            return false;
        }
    }
}
