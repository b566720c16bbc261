using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;

namespace Broker.Core.Audit;

/// <summary>One finding of verification: the record (or file) to look at, and why.</summary>
public sealed record AuditProblem(string File, long Line, long? Seq, string What)
{
    public override string ToString() => Seq is { } seq
        ? string.Create(CultureInfo.InvariantCulture, $"{File}:{Line}: seq {seq}: {What}")
        : string.Create(CultureInfo.InvariantCulture, $"{File}:{Line}: {What}");

    /// <summary>The finding without the folder, as an <c>audit.tamper_acknowledged</c> record names it (the folder may move).</summary>
    public string Key => Seq is { } seq
        ? string.Create(CultureInfo.InvariantCulture, $"{System.IO.Path.GetFileName(File)}:{Line}: seq {seq}: {What}")
        : string.Create(CultureInfo.InvariantCulture, $"{System.IO.Path.GetFileName(File)}:{Line}: {What}");
}

/// <summary>An <c>audit.tamper_acknowledged</c> record found in a node's chain.</summary>
public sealed record AuditAcknowledgement(string Node, long Seq, string? Actor, string? Reason, IReadOnlyList<string> Findings);

/// <summary>Where a node's chain ends as verified: the next record continues from here.</summary>
public sealed record AuditChainEnd(long Seq, string Hash, long Segment, AuditCheckpoint? Sealed);

public sealed class AuditVerifyResult
{
    public bool Ok => Problems.Count == 0;

    /// <summary>The first finding; null when everything verified.</summary>
    public AuditProblem? Problem => Problems.Count == 0 ? null : Problems[0];

    /// <summary>Every finding, in the order found (per node, oldest segment first).</summary>
    public List<AuditProblem> Problems { get; } = [];

    /// <summary>Things that are not tampering but limit what was proven (torn tail after a crash, open segment, unpinned key).</summary>
    public List<string> Notes { get; } = [];

    /// <summary>Operator acknowledgements of earlier findings, as recorded in the chains.</summary>
    public List<AuditAcknowledgement> Acknowledgements { get; } = [];

    /// <summary>Per node, where its chain ends (after resynchronizing past any finding).</summary>
    public Dictionary<string, AuditChainEnd> Ends { get; } = new(StringComparer.Ordinal);

    public long Records { get; internal set; }

    public int Segments { get; internal set; }

    public int Checkpoints { get; internal set; }

    public List<string> Nodes { get; } = [];

    /// <summary>Whether an <c>audit.tamper_acknowledged</c> record of the problem's node names it.</summary>
    public bool IsAcknowledged(AuditProblem problem) => Acknowledgements.Any(a => a.Findings.Contains(problem.Key, StringComparer.Ordinal));

    /// <summary>The findings no acknowledgement names.</summary>
    public IEnumerable<AuditProblem> Unacknowledged => Problems.Where(p => !IsAcknowledged(p));
}

public sealed class AuditVerifyOptions
{
    /// <summary>The pinned audit checkpoint public key; without it, each signature is checked against the key it names.</summary>
    public ECDsa? CheckpointKey { get; init; }

    /// <summary>Signed heads published off the host: each node's chain must reach its head, with the same hash.</summary>
    public IReadOnlyList<AuditHead> ExpectedHeads { get; init; } = [];

    /// <summary>Only this node's files (a node checking its own log at start); null: every node found.</summary>
    public string? Node { get; init; }

    /// <summary>Check records of only the newest this-many segments per node (0: all); older ones are checked for gaps only.</summary>
    public int LastSegments { get; init; }
}

/// <summary>
/// Checks one or more nodes' audit segments: every record is well-formed, names its node, has
/// the next seq and the hash of the record before it; segments follow each other without gaps;
/// each closed segment matches its signed checkpoint (file and in-log record); no checkpoint
/// was orphaned or moved aside; each chain reaches the signed head it is expected to. Reports
/// every finding, resynchronizing after each (a segment with a bad record contributes one
/// finding; the chain picks up again from that segment's signed checkpoint or the next
/// segment's first record). A torn last line (crash mid-write) is a note, not tampering: it was
/// never acknowledged to anyone.
/// </summary>
public static class AuditVerifier
{
    /// <summary>Marks a checkpoint an older broker version moved aside at start instead of refusing.</summary>
    public const string MismatchMarker = ".mismatch-";

    public static AuditVerifyResult Verify(IEnumerable<string> paths, ECDsa? checkpointKey = null) =>
        Verify(paths, new AuditVerifyOptions { CheckpointKey = checkpointKey });

    public static AuditVerifyResult Verify(IEnumerable<string> paths, AuditVerifyOptions options)
    {
        var files = new Dictionary<string, AuditSegmentFile>(StringComparer.Ordinal);
        var result = new AuditVerifyResult();
        foreach (var path in paths)
        {
            if (Directory.Exists(path))
            {
                foreach (var segment in AuditFiles.All(path))
                {
                    files[Path.GetFullPath(segment.Path)] = segment;
                }

                FolderFindings(path, options.Node, result);
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

        if (options.CheckpointKey is null)
        {
            result.Notes.Add("checkpoint signatures were checked against the key each checkpoint names; pass the audit public key to prove who signed them");
        }

        var groups = files.Values
            .Where(f => options.Node is null || f.Node == options.Node)
            .GroupBy(f => f.Node)
            .OrderBy(g => g.Key, StringComparer.Ordinal);
        foreach (var node in groups)
        {
            result.Nodes.Add(node.Key);
            var ordered = node.OrderBy(s => s.Number).ToList();
            var skip = options.LastSegments > 0 ? Math.Max(0, ordered.Count - options.LastSegments) : 0;
            for (var i = 1; i <= skip && i < ordered.Count; i++)
            {
                // Segments not read record by record are still checked for gaps.
                if (ordered[i].Number != ordered[i - 1].Number + 1)
                {
                    result.Problems.Add(new AuditProblem(ordered[i].Path, 1, null, SegmentMissing(ordered[i - 1].Number + 1, node.Key)));
                }
            }

            var chain = new NodeChain(node.Key, options.CheckpointKey, result, options.ExpectedHeads.Where(h => h.Node == node.Key).ToList());
            foreach (var segment in ordered.Skip(skip))
            {
                chain.Segment(segment);
            }

            chain.Finish();
        }

        foreach (var head in options.ExpectedHeads.Where(h => (options.Node is null || h.Node == options.Node) && !result.Nodes.Contains(h.Node)))
        {
            result.Problems.Add(new AuditProblem(
                paths.FirstOrDefault() ?? ".",
                1,
                head.Seq,
                string.Create(CultureInfo.InvariantCulture, $"no segment of node {head.Node} was found, but its signed head is at seq {head.Seq} (its log was deleted)")));
        }

        return result;
    }

    private static string SegmentMissing(long number, string node) =>
        string.Create(CultureInfo.InvariantCulture, $"segment {number:D8} of node {node} is missing (deleted or renamed)");

    /// <summary>Checkpoints whose segment is gone, and checkpoints an earlier start moved aside.</summary>
    private static void FolderFindings(string folder, string? onlyNode, AuditVerifyResult result)
    {
        var found = new List<AuditProblem>();
        foreach (var path in Directory.EnumerateFiles(folder, AuditChain.SegmentPrefix + "*" + AuditChain.CheckpointSuffix + "*"))
        {
            var name = Path.GetFileName(path);
            var marker = name.IndexOf(AuditChain.CheckpointSuffix, StringComparison.Ordinal);
            var segmentName = name[..marker] + AuditChain.SegmentSuffix;
            if (!AuditChain.TryParseSegmentFileName(segmentName, out var node, out _) || (onlyNode is not null && node != onlyNode))
            {
                continue;
            }

            var rest = name[(marker + AuditChain.CheckpointSuffix.Length)..];
            if (rest.Length == 0)
            {
                if (!File.Exists(Path.Combine(folder, segmentName)))
                {
                    var orphan = AuditFiles.TryReadCheckpoint(path);
                    found.Add(new AuditProblem(path, 1, orphan?.FirstSeq, "the segment this checkpoint signs is missing (deleted)"));
                }
            }
            else if (rest.StartsWith(MismatchMarker, StringComparison.Ordinal))
            {
                var moved = AuditFiles.TryReadCheckpoint(path);
                found.Add(new AuditProblem(
                    path,
                    1,
                    moved?.LastSeq,
                    "a checkpoint that no longer matched its segment was moved aside here by an earlier start: the segment was truncated or altered before that start"));
            }
        }

        found.Sort((a, b) => string.CompareOrdinal(a.File, b.File));
        result.Problems.AddRange(found);
    }

    private sealed class NodeChain(string node, ECDsa? key, AuditVerifyResult result, IReadOnlyList<AuditHead> heads)
    {
        // What the next record must carry; null once a finding left it unknown (picked up again at the next segment).
        private long? _expectedSeq;
        private string? _expectedPrev;
        private (string File, long Line, long Seq)? _lastRecord;
        private AuditSegmentFile? _previous;
        private AuditCheckpoint? _previousSummary;
        private bool _previousSealed;
        private readonly HashSet<long> _headSeqs = heads.Select(h => h.Seq).ToHashSet();

        // The hashes of the records at the expected heads' seqs, and of the last record read.
        private readonly Dictionary<long, string> _hashes = [];
        private string _lastHash = AuditChain.Genesis;

        public void Segment(AuditSegmentFile segment)
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
                Add(file, 1, null, SegmentMissing(_previous.Number + 1, node));
                _expectedSeq = null;
                _expectedPrev = null;
                _previousSummary = null;
            }

            var bytes = File.ReadAllBytes(file);
            var span = bytes.AsSpan();
            var sidecarPath = segment.CheckpointPath;
            var sidecarCanonical = false;
            var sidecar = File.Exists(sidecarPath) ? AuditFiles.TryReadCheckpoint(sidecarPath, out sidecarCanonical) : null;
            if (File.Exists(sidecarPath) && sidecar is null)
            {
                Add(sidecarPath, 1, null, "checkpoint file is not readable (altered)");
            }

            var broken = false;
            long count = 0;
            long firstSeq = 0;
            string? firstPrev = null;
            var startExpectedSeq = _expectedSeq;
            var startExpectedPrev = _expectedPrev;
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
                if (!Record(segment, span, record, nextOffset, line, sidecar))
                {
                    broken = true;
                    break;
                }

                if (count == 0)
                {
                    AuditRecordHeader.TryRead(record, out var first);
                    firstSeq = first.Seq;
                    firstPrev = first.Prev;
                    if (startExpectedSeq is null)
                    {
                        startExpectedSeq = first.Seq;
                        startExpectedPrev = first.Prev;
                    }
                }

                count++;
                offset = nextOffset;
            }

            if (!broken && offset < span.Length)
            {
                result.Notes.Add(string.Create(CultureInfo.InvariantCulture, $"{file}:{line + 1}: truncated tail after last durable record ({span.Length - offset} bytes of a record cut off by a crash; never acknowledged)"));
            }

            var summary = broken ? null : new AuditCheckpoint
            {
                Node = node,
                Segment = Path.GetFileName(file),
                FirstSeq = count == 0 ? (startExpectedSeq ?? 1) : firstSeq,
                LastSeq = count == 0 ? (startExpectedSeq ?? 1) - 1 : firstSeq + count - 1,
                Count = count,
                StartPrev = count == 0 ? startExpectedPrev ?? "" : firstPrev!,
                LastHash = _expectedPrev ?? "",
            };

            var sealedBy = sidecar is not null && SignatureOk(sidecar, out _) && sidecar.Node == node && sidecar.Segment == Path.GetFileName(file) ? sidecar : null;
            if (sidecar is not null && summary is not null)
            {
                if (Checkpoint(sidecarPath, sidecar, summary, file, line) && !sidecarCanonical)
                {
                    // Same content, other bytes (whitespace, escapes): the file was edited all the same.
                    Add(sidecarPath, 1, null, "checkpoint file is not byte for byte as the broker wrote it (altered)");
                }
            }
            else if (sidecar is not null && sealedBy is null)
            {
                Checkpoint(sidecarPath, sidecar, null, file, line);
            }

            // Pick the chain up again from the signed end of this segment when there is one.
            if (sealedBy is not null)
            {
                _expectedSeq = sealedBy.LastSeq + 1;
                _expectedPrev = sealedBy.LastHash;
                _previousSummary = sealedBy;
            }
            else if (summary is not null)
            {
                _previousSummary = summary;
            }
            else
            {
                _expectedSeq = null;
                _expectedPrev = null;
                _previousSummary = null;
            }

            if (_expectedSeq is { } next && _expectedPrev is not null)
            {
                result.Ends[node] = new AuditChainEnd(next - 1, _expectedPrev, segment.Number, sealedBy);
            }
            else if (_lastRecord is { } last)
            {
                result.Ends[node] = new AuditChainEnd(last.Seq, _lastHash, segment.Number, null);
            }

            _previous = segment;
            _previousSealed = sidecar is not null;
        }

        /// <summary>Checks one record against the chain; false (and one finding) when it breaks it.</summary>
        private bool Record(AuditSegmentFile segment, ReadOnlySpan<byte> span, ReadOnlySpan<byte> record, int nextOffset, long line, AuditCheckpoint? sidecar)
        {
            var file = segment.Path;
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
                if (header.EventId == AuditEventTypes.AuditTamperAcknowledged.Id)
                {
                    Acknowledgement(record, header);
                }
                else if (header.EventId != AuditEventTypes.AuditCheckpoint.Id)
                {
                    return Fail(file, line, header.Seq, "segment does not start with the checkpoint of the segment before it (swapped or replaced segment)");
                }
                else if (!CheckpointRecord(segment, record, header, line))
                {
                    return false;
                }
            }
            else if (header.EventId == AuditEventTypes.AuditCheckpoint.Id || header.EventId == AuditEventTypes.AuditTamperAcknowledged.Id)
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

            result.Records++;
            _expectedSeq = header.Seq + 1;
            _expectedPrev = hash;
            _lastRecord = (file, line, header.Seq);
            _lastHash = hash;
            if (_headSeqs.Contains(header.Seq))
            {
                _hashes[header.Seq] = hash;
            }

            return true;
        }

        /// <summary>After the last segment: note an open segment, and check the chain reaches every expected head.</summary>
        public void Finish()
        {
            if (_previous is not null && !_previousSealed)
            {
                result.Notes.Add($"node {node}: segment {Path.GetFileName(_previous.Path)} is still open (no checkpoint yet): its records are chained but its end is not yet signed");
            }

            foreach (var head in heads)
            {
                var where = _previous?.Path ?? ".";
                if (!AuditHeads.SignatureValid(head, key))
                {
                    Add(where, 1, head.Seq, "the expected head's signature is invalid or by another key (forged head)");
                    continue;
                }

                var end = result.Ends.GetValueOrDefault(node);
                var lastSeq = end?.Seq ?? 0;
                if (lastSeq < head.Seq)
                {
                    Add(where, (_lastRecord?.Line ?? 0) + 1, lastSeq + 1, string.Create(
                        CultureInfo.InvariantCulture,
                        $"the log ends at seq {lastSeq} but node {node}'s signed head is at seq {head.Seq} (segment {head.Segment:D8}): records {lastSeq + 1}..{head.Seq} missing (newest records or segments deleted)"));
                }
                else if (head.Seq > 0 && _hashes.TryGetValue(head.Seq, out var hash) && hash != head.Hash)
                {
                    Add(where, 1, head.Seq, "record differs from node's signed head at this seq (the chain was rewritten from here)");
                }
            }
        }

        private void Acknowledgement(ReadOnlySpan<byte> record, AuditRecordHeader header)
        {
            var ack = Parse(record);
            result.Acknowledgements.Add(new AuditAcknowledgement(node, header.Seq, ack?.Actor, ack?.Detail, ack?.Findings ?? []));
        }

        private static AuditEvent? Parse(ReadOnlySpan<byte> record)
        {
            try
            {
                return JsonSerializer.Deserialize(record, AuditJsonContext.Default.AuditEvent);
            }
            catch (Exception ex) when (ex is JsonException or InvalidOperationException)
            {
                return null;
            }
        }

        /// <summary>The first record of a later segment carries the signed checkpoint of the segment before it.</summary>
        private bool CheckpointRecord(AuditSegmentFile segment, ReadOnlySpan<byte> record, AuditRecordHeader header, long line)
        {
            if (Parse(record)?.Checkpoint is not { } checkpoint)
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
                // The chain starts (or picks up again) here: the checkpoint says where it continues from.
                _expectedSeq = checkpoint.LastSeq + 1;
                _expectedPrev = checkpoint.LastHash;
            }

            result.Checkpoints++;
            return true;
        }

        /// <summary>A segment's checkpoint file against the segment as found (null: the segment could not be read to its end).</summary>
        private bool Checkpoint(string sidecarPath, AuditCheckpoint checkpoint, AuditCheckpoint? found, string file, long lines)
        {
            if (!SignatureOk(checkpoint, out var why))
            {
                return Fail(sidecarPath, 1, null, "checkpoint " + why);
            }

            if (checkpoint.Node != node || checkpoint.Segment != Path.GetFileName(file))
            {
                return Fail(file, 1, null, $"segment is not the one its checkpoint signs ({checkpoint.Segment}): swapped or renamed");
            }

            if (found is null)
            {
                return false;
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

        private void Add(string file, long line, long? seq, string what) => result.Problems.Add(new AuditProblem(file, line, seq, what));

        private bool Fail(string file, long line, long? seq, string what)
        {
            Add(file, line, seq, what);
            return false;
        }
    }
}
