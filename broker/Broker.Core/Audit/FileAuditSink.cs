using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;
using System.Threading.Channels;
using Broker.Core.Diagnostics;
using Broker.Core.Errors;
using Microsoft.Extensions.Logging;

namespace Broker.Core.Audit;

public sealed class FileAuditOptions
{
    /// <summary>Folder holding this node's segments and checkpoints (required; created at start if missing, never afterwards).</summary>
    public string Directory { get; set; } = "";

    /// <summary>This node's id in every record and file name; when empty, one is generated once and kept in <c>node-id</c> in <see cref="Directory"/>.</summary>
    public string? NodeId { get; set; }

    /// <summary>A segment is closed and checkpointed once it reaches this size.</summary>
    public long SegmentMaxBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>A segment holding events is closed and checkpointed once it is this old, even when idle.</summary>
    public TimeSpan SegmentMaxAge { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Most records written under one fsync.</summary>
    public int MaxBatch { get; set; } = 512;

    /// <summary>While the log cannot be written, how often an idle sink tries again (a request always tries at once).</summary>
    public TimeSpan RetryInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Signs segment checkpoints (ES256). Must not be the token-signing key (required).</summary>
    public ECDsa? CheckpointKey { get; set; }

    /// <summary>Optional copy of every durable record (e.g. a Redis stream); fed after the fsync, never instead of it.</summary>
    public IAuditMirror? Mirror { get; set; }

    /// <summary>Where group-commit latency and batch sizes are recorded (optional).</summary>
    public BrokerMetrics? Metrics { get; set; }

    /// <summary>Where this node's signed chain head is published as it advances, and checked at start (optional; Redis for a fleet).</summary>
    public IAuditHeadStore? HeadStore { get; set; }

    /// <summary>Shortest pause between two head publications (zero: after every batch); the host sets it from <c>Broker:Audit:HeadPublishInterval</c>.</summary>
    public TimeSpan HeadPublishInterval { get; set; }

    /// <summary>
    /// The fingerprint of the findings an operator acknowledges (<c>--acknowledge-tamper</c>): when it
    /// matches what start-up found, the node starts and records them in <c>audit.tamper_acknowledged</c>.
    /// </summary>
    public string? AcknowledgeTamper { get; set; }

    /// <summary>Who acknowledged, for the record (the operating-system user by default).</summary>
    public string AcknowledgedBy { get; set; } = Environment.UserName;

    /// <summary>How many of the newest segments start-up checks record by record (0: all); older ones are checked for gaps.</summary>
    public int VerifySegmentsAtStart { get; set; } = 8;
}

/// <summary>
/// Appends audit events as hash-chained JSON lines and makes them durable with group commit:
/// callers serialize their event, one writer drains every waiting event, chains and writes them,
/// fsyncs once, then releases all their callers. No caller returns before its line is on disk.
/// Segments roll by size and age; each closed segment gets a signed checkpoint. When a write
/// fails (disk full, permission lost, file or folder removed) the batch fails with
/// AUDIT_UNAVAILABLE, the torn bytes are cut off where possible, and the next batch reopens a
/// fresh segment that continues the chain, so the broker resumes by itself.
/// The writer is a dedicated thread, not a thread-pool task: a request's record reaches the
/// disk without first queueing for the pool behind the request work it is part of.
/// </summary>
public sealed partial class FileAuditSink : IAuditSink, IAsyncDisposable
{
    private const string NodeIdFile = "node-id";

    // The one waiter on this channel is the writer thread, blocked until a record arrives.
    // Synchronous continuations let a producer's TryWrite wake it directly (an OS wake-up); with
    // the default, the wake-up itself is queued on the thread pool behind the request work.
    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true, AllowSynchronousContinuations = true });
    private readonly FileAuditOptions _options;
    private readonly ECDsa _key;
    private readonly TimeProvider _time;
    private readonly ILogger<FileAuditSink> _logger;
    private readonly Thread _writer;

    // Completed by the writer thread as it leaves: DisposeAsync awaits it instead of blocking a
    // pool thread in Join. Continuations run elsewhere, so they never run on (and join) the writer.
    private readonly TaskCompletionSource _writerDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly AuditFolderLock _folderLock;
    private volatile bool _healthy = true;

    // Chain state: touched by the constructor, then only by the writer loop, then by DisposeAsync.
    private long _segment;

    // True from the moment a segment is opened until it is sealed.
    private bool _segmentOpen;
    private string _segmentPath = "";

    // The open segment's path, kept to re-stat it after each fsync without re-normalizing the path.
    private FileInfo? _segmentOnDisk;
    private FileStream? _file;
    private long _length;
    private DateTimeOffset _openedAt;
    private long _segmentCount;
    private bool _segmentHasEvents;
    private long _segmentFirstSeq;
    private string _segmentStartPrev = AuditChain.Genesis;
    private long _seq;
    private string _lastHash = AuditChain.Genesis;
    private AuditCheckpoint? _pendingCheckpoint;

    // The acknowledgement to write as the first record of the first segment after start, if any.
    private AuditEvent? _pendingAcknowledgement;
    private readonly AuditHeadPublisher? _heads;
    private volatile string? _headConflict;
    private byte[] _buffer = new byte[64 * 1024];
    private long _flushes;
    private long _mirrorFailures;

    // Records made durable by the last batch, waiting to be handed to the mirror (writer loop only).
    private ReadOnlyMemory<byte> _mirrorPending;

    public FileAuditSink(FileAuditOptions options, TimeProvider time, ILogger<FileAuditSink> logger)
    {
        if (string.IsNullOrWhiteSpace(options.Directory))
        {
            throw new ArgumentException("An audit directory is required.", nameof(options));
        }

        _key = options.CheckpointKey ?? throw new ArgumentException("An audit checkpoint key is required.", nameof(options));
        _options = options;
        _time = time;
        _logger = logger;
        Directory = Path.GetFullPath(options.Directory);
        if (File.Exists(Directory))
        {
            throw new IOException($"The audit path '{Directory}' is a file; it must be a folder (segments are written inside it).");
        }

        CreateDirectory(Directory);

        // Before anything is read or repaired: recovery cuts torn tails, which must never be another writer's.
        _folderLock = AuditFolderLock.Acquire(Directory);
        try
        {
            Node = ResolveNodeId(options.NodeId, Directory);
            var acknowledged = CheckIntegrity(out var replaceHead);
            if (!acknowledged)
            {
                Recover();
            }

            if (options.HeadStore is { } store)
            {
                _heads = new AuditHeadPublisher(store, _key, Node, time, logger, options.RetryInterval, replaceHead, HeadConflict, options.HeadPublishInterval);
            }

            StartSegment();
            WriteBatch([]);
        }
        catch
        {
            _file?.Dispose();
            _folderLock.Dispose();
            throw;
        }

        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "broker-audit-writer" };

        // UnsafeStart: the writer serves every caller, so it must not carry the ambient context
        // (activity, log scope) of whoever happened to construct the sink.
        _writer.UnsafeStart();
    }

    /// <summary>False after the last batch failed to become durable; true again once one succeeds.</summary>
    public bool IsHealthy => _healthy && _headConflict is null;

    /// <summary>This node's chain head as of the last durable batch, signed now (for auditors who pin it).</summary>
    public AuditHead CurrentHead()
    {
        var head = _head;
        return AuditHeads.Sign(new AuditHead { Node = Node, Seq = head.Seq, Hash = head.Hash, Segment = head.Segment, Time = _time.GetUtcNow() }, _key);
    }

    // The durable head, replaced by the writer after each batch and read by CurrentHead.
    private volatile DurableHead _head = new(0, AuditChain.Genesis, 0);

    private sealed record DurableHead(long Seq, string Hash, long Segment);

    /// <summary>This node's id, as in every record and segment name.</summary>
    public string Node { get; }

    public string Directory { get; }

    /// <summary>Durable writes so far (each one fsync shared by a whole batch); for tests of group commit.</summary>
    internal long Flushes => Interlocked.Read(ref _flushes);

    /// <summary>Batches the mirror refused (threw); the records are in the local log all the same.</summary>
    public long MirrorFailures => Interlocked.Read(ref _mirrorFailures);

    public ValueTask AppendAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
    {
        if (auditEvent.Seq is not null || auditEvent.Node is not null || auditEvent.Prev is not null)
        {
            throw new ArgumentException("seq, node and prev are set by the audit sink.", nameof(auditEvent));
        }

        // Serialization happens on the caller's thread; the writer only chains and hashes.
        var pending = new Pending(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(auditEvent, AuditJsonContext.Default.AuditEvent));
        if (!_queue.Writer.TryWrite(pending))
        {
            throw BrokerErrors.Unavailable(BrokerErrors.AuditUnavailable, "The audit log is shut down.");
        }

        // Cancellation must not abandon a record that may still be written: wait for the verdict.
        return new ValueTask(pending.Done.Task);
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _writerDone.Task;

        // The thread has done its last work and is leaving; the join only makes "stopped" exact.
        _writer.Join();
        try
        {
            // A clean stop leaves every segment sealed; the next start chains on from the checkpoint.
            if (_file is not null && _segmentCount > 0)
            {
                Seal();
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Log.SealFailed(_logger, _segmentPath, ex);
        }

        CloseQuietly(truncate: false);
        if (_heads is not null)
        {
            _heads.Advance(_seq, _lastHash, _segment);
            await _heads.DisposeAsync();
        }

        _folderLock.Dispose();
    }

    /// <summary>The writer thread: chains, writes and fsyncs one batch at a time until the channel is completed and drained.</summary>
    private void WriteLoop()
    {
        try
        {
            var batch = new List<Pending>(_options.MaxBatch);
            var reader = _queue.Reader;

            // Records that arrived during the last fsync are already queued: TryPeek sends them
            // into the next batch at once, and the thread blocks only when there is nothing to write.
            while (reader.TryPeek(out _) || WaitForWork(reader))
            {
                batch.Clear();
                while (batch.Count < _options.MaxBatch && reader.TryRead(out var item))
                {
                    batch.Add(item);
                }

                Commit(batch);
            }

            _writerDone.TrySetResult();
        }
        catch (Exception ex)
        {
            // As from a faulted writer task: DisposeAsync rethrows it.
            _writerDone.TrySetException(ex);
        }
    }

    /// <summary>
    /// Blocks the writer thread until a record is queued (true) or the channel is completed and
    /// empty (false). While it waits, an idle deadline from <see cref="IdleWait"/> (on the
    /// injected clock) seals an old segment or retries a broken log.
    /// </summary>
    private bool WaitForWork(ChannelReader<Pending> reader)
    {
        var waiting = reader.WaitToReadAsync().AsTask();
        while (!waiting.IsCompleted && IdleWait() is { } idle)
        {
            using var stop = new CancellationTokenSource();
            var timer = Task.Delay(idle, _time, stop.Token);
            if (Task.WaitAny(waiting, timer) == 0)
            {
                // Cancelled, not just abandoned: an uncancelled delay keeps its timer for up to SegmentMaxAge.
                stop.Cancel();
                break;
            }

            Maintain();
        }

        return waiting.GetAwaiter().GetResult();
    }

    /// <summary>Makes one batch durable, then releases its callers, then feeds the mirror.</summary>
    private void Commit(List<Pending> batch)
    {
        try
        {
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            WriteBatch(batch);
            _options.Metrics?.AuditCommitted(batch.Count, System.Diagnostics.Stopwatch.GetElapsedTime(started));
            _healthy = true;
            foreach (var item in batch)
            {
                item.Done.TrySetResult();
            }

            PublishToMirror();
        }
        catch (Exception ex)
        {
            Fail(batch.Count, ex);
            var failure = BrokerErrors.Unavailable(BrokerErrors.AuditUnavailable, "The audit log cannot be written; the request was not completed.", ex);
            foreach (var item in batch)
            {
                item.Done.TrySetException(failure);
            }
        }
    }

    /// <summary>How long an idle writer may sleep before it must seal an old segment or retry a broken log.</summary>
    private TimeSpan? IdleWait()
    {
        if (!_healthy || _file is null)
        {
            return _options.RetryInterval;
        }

        if (!_segmentHasEvents)
        {
            return null;
        }

        var left = _openedAt + _options.SegmentMaxAge - _time.GetUtcNow();
        return left < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : left;
    }

    /// <summary>Idle work: seal a segment that has grown old, or reopen a log that failed.</summary>
    private void Maintain()
    {
        try
        {
            WriteBatch([]);
            _healthy = true;
            PublishToMirror();
        }
        catch (Exception ex)
        {
            Fail(0, ex);
        }
    }

    /// <summary>After the fsync and after callers heard OK: the mirror can only lose its copy, never delay or undo the local record.</summary>
    private void PublishToMirror()
    {
        if (_mirrorPending.IsEmpty)
        {
            return;
        }

        var lines = _mirrorPending;
        _mirrorPending = default;
        try
        {
            _options.Mirror!.Publish(lines);
        }
        catch (Exception ex)
        {
            Interlocked.Increment(ref _mirrorFailures);
            Log.MirrorFailed(_logger, ex);
        }
    }

    private void Fail(int count, Exception ex)
    {
        _healthy = false;
        Log.WriteFailed(_logger, _segmentPath, count, ex);
        CloseQuietly(truncate: true);
    }

    /// <summary>Writes one batch (possibly empty) and fsyncs it; chain state moves only when it is durable.</summary>
    private void WriteBatch(List<Pending> batch)
    {
        if (_headConflict is { } conflict)
        {
            throw new IOException(conflict);
        }

        if (_file is null)
        {
            Reopen();
        }
        else if (_segmentHasEvents && (_length >= _options.SegmentMaxBytes || _time.GetUtcNow() - _openedAt >= _options.SegmentMaxAge))
        {
            Seal();
            StartSegment();
        }

        var file = _file!;
        var seq = _seq;
        var hash = _lastHash;
        var firstPrev = hash;
        var written = 0;
        var records = 0;
        if (_segmentCount == 0 && _pendingAcknowledgement is { } acknowledgement)
        {
            // After acknowledged tampering the chain resumes here, and says why.
            Append(JsonSerializer.SerializeToUtf8Bytes(acknowledgement, AuditJsonContext.Default.AuditEvent), ref seq, ref hash, ref written);
            records++;
        }
        else if (_segmentCount == 0 && _pendingCheckpoint is { } checkpoint)
        {
            var json = JsonSerializer.SerializeToUtf8Bytes(CheckpointEvent(checkpoint), AuditJsonContext.Default.AuditEvent);
            Append(json, ref seq, ref hash, ref written);
            records++;
        }

        foreach (var item in batch)
        {
            Append(item.Json, ref seq, ref hash, ref written);
            records++;
        }

        if (written == 0)
        {
            return;
        }

        file.Write(_buffer, 0, written);
        file.Flush(flushToDisk: true);
        Interlocked.Increment(ref _flushes);

        // A segment unlinked or replaced behind the broker still accepts writes through the old
        // handle: only what is on the path counts as durable. One stat of the path: the handle
        // alone (fstat) cannot tell a segment moved aside from one still in place.
        var onDisk = _segmentOnDisk!;
        onDisk.Refresh();
        if (!onDisk.Exists || onDisk.Length != _length + written)
        {
            throw new IOException($"Audit segment '{_segmentPath}' was removed or changed by someone else.");
        }

        if (_segmentCount == 0)
        {
            _segmentFirstSeq = _seq + 1;
            _segmentStartPrev = firstPrev;
        }

        _length += written;
        _segmentCount += records;
        _segmentHasEvents |= batch.Count > 0;
        _seq = seq;
        _lastHash = hash;
        _pendingCheckpoint = null;
        _pendingAcknowledgement = null;
        _head = new DurableHead(seq, hash, _segment);
        _heads?.Advance(seq, hash, _segment);
        if (_options.Mirror is not null)
        {
            var durable = _buffer.AsSpan(0, written);
            _mirrorPending = _mirrorPending.IsEmpty ? durable.ToArray() : [.. _mirrorPending.Span, .. durable];
        }
    }

    private void Append(byte[] json, ref long seq, ref string hash, ref int written)
    {
        var needed = written + AuditChain.SplicedLength(Node, json);
        if (needed > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(needed, _buffer.Length * 2));
        }

        seq++;
        var length = AuditChain.Splice(_buffer.AsSpan(written), seq, Node, hash, json);
        hash = AuditChain.Hash(_buffer.AsSpan(written, length - 1));
        written += length;
    }

    private AuditEvent CheckpointEvent(AuditCheckpoint checkpoint) => new()
    {
        EventId = AuditEventTypes.AuditCheckpoint.Id,
        Type = AuditEventTypes.AuditCheckpoint.Name,
        Time = _time.GetUtcNow(),
        CorrelationId = "audit-" + checkpoint.Segment,
        Outcome = AuditOutcomes.Success,
        Checkpoint = checkpoint,
    };

    /// <summary>After a failure: close the damaged segment with what is known durable and continue in a new one.</summary>
    private void Reopen()
    {
        // The folder is created at start only: if storage vanished (unmounted, deleted), writing
        // into a fresh empty folder in its place would hide that. Wait until it is back.
        if (!System.IO.Directory.Exists(Directory))
        {
            throw new DirectoryNotFoundException($"The audit directory '{Directory}' does not exist.");
        }

        if (_segmentCount > 0)
        {
            Seal();
        }

        StartSegment();
    }

    /// <summary>Opens the next segment: a new number after a sealed one, the same number when nothing durable was written to it.</summary>
    private void StartSegment()
    {
        var reuse = _segmentOpen && _segmentCount == 0;
        var number = reuse ? _segment : Math.Max(_segment, HighestSegmentOnDisk()) + 1;
        var path = Path.Combine(Directory, AuditChain.SegmentFileName(Node, number));
        var fileOptions = new FileStreamOptions
        {
            // Only a segment that holds nothing durable is ever reused (and then emptied).
            Mode = reuse ? FileMode.Create : FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.Read | FileShare.Delete,
            BufferSize = 0,
        };
        if (!OperatingSystem.IsWindows())
        {
            // Identity events are for auditors, not for every local user.
            fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        _file = new FileStream(path, fileOptions);
        SyncDirectory(Directory);
        _segment = number;
        _segmentOpen = true;
        _segmentPath = path;
        _segmentOnDisk = new FileInfo(path);
        _length = 0;
        _segmentCount = 0;
        _segmentHasEvents = false;
        _segmentFirstSeq = _seq + 1;
        _segmentStartPrev = _lastHash;
        _openedAt = _time.GetUtcNow();
    }

    /// <summary>Writes the signed checkpoint of the current segment and closes it; the next segment starts with the same checkpoint.</summary>
    private void Seal()
    {
        var checkpoint = AuditChain.Sign(
            new AuditCheckpoint
            {
                Node = Node,
                Segment = Path.GetFileName(_segmentPath),
                FirstSeq = _segmentFirstSeq,
                LastSeq = _seq,
                Count = _segmentCount,
                StartPrev = _segmentStartPrev,
                LastHash = _lastHash,
                SealedAt = _time.GetUtcNow(),
            },
            _key);
        WriteCheckpointFile(Path.Combine(Directory, AuditChain.CheckpointFileName(Node, _segment)), checkpoint);
        CloseQuietly(truncate: false);
        _segmentOpen = false;
        _pendingCheckpoint = checkpoint;
        _segmentCount = 0;
        _segmentHasEvents = false;
    }

    private static void WriteCheckpointFile(string path, AuditCheckpoint checkpoint)
    {
        var temporary = path + ".tmp";
        var fileOptions = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var stream = new FileStream(temporary, fileOptions))
        {
            stream.Write(AuditChain.CheckpointFileBytes(checkpoint));
            stream.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
        SyncDirectory(Path.GetDirectoryName(path)!);
    }

    /// <summary>
    /// At start, before anything is written: verifies this node's log (the newest
    /// <see cref="FileAuditOptions.VerifySegmentsAtStart"/> segments record by record, all of
    /// them for gaps, orphaned and moved-aside checkpoints) against the head published off the
    /// host. Findings no earlier acknowledgement names stop the start
    /// (<see cref="AuditTamperedException"/>) unless the operator acknowledged exactly these;
    /// then the chain resumes where verification ends, in a new segment whose first record
    /// names them. True when acknowledging (no old segment is sealed or signed then).
    /// </summary>
    private bool CheckIntegrity(out bool replaceHead)
    {
        replaceHead = false;
        var segments = AuditFiles.Segments(Directory, Node);
        while (segments.Count > 0 && new FileInfo(segments[^1].Path).Length == 0)
        {
            // Created, never written: nothing to seal.
            File.Delete(segments[^1].Path);
            segments.RemoveAt(segments.Count - 1);
        }

        AuditHead? published = null;
        if (_options.HeadStore is { } store)
        {
            try
            {
                published = store.Read(Node);
            }
            catch (Exception ex)
            {
                // Checked again at the first publication: a head ahead of this log then stops writing.
                Log.HeadUnchecked(_logger, ex);
            }
        }

        using var publicKey = ECDsa.Create();
        publicKey.ImportSubjectPublicKeyInfo(_key.ExportSubjectPublicKeyInfo(), out _);
        var result = AuditVerifier.Verify(
            [Directory],
            new AuditVerifyOptions
            {
                CheckpointKey = publicKey,
                Node = Node,
                ExpectedHeads = published is null ? [] : [published],
                LastSegments = _options.VerifySegmentsAtStart,
            });
        var findings = result.Unacknowledged.ToList();
        if (findings.Count == 0)
        {
            return false;
        }

        var fingerprint = AuditTamperedException.FingerprintOf(findings);
        if (!string.Equals(_options.AcknowledgeTamper, fingerprint, StringComparison.OrdinalIgnoreCase))
        {
            Log.Tampered(_logger, Directory, findings.Count, findings[0].ToString());
            throw new AuditTamperedException(Directory, Node, findings);
        }

        Log.TamperAcknowledged(_logger, Directory, findings.Count, _options.AcknowledgedBy);
        var end = result.Ends.GetValueOrDefault(Node);
        _seq = end?.Seq ?? 0;
        _lastHash = end?.Hash ?? AuditChain.Genesis;
        _segment = Math.Max(segments.Count == 0 ? 0 : segments[^1].Number, published?.Segment ?? 0);
        replaceHead = published is not null && (published.Seq != _seq || published.Hash != _lastHash);
        _pendingAcknowledgement = new AuditEvent
        {
            EventId = AuditEventTypes.AuditTamperAcknowledged.Id,
            Type = AuditEventTypes.AuditTamperAcknowledged.Name,
            Time = _time.GetUtcNow(),
            CorrelationId = "audit-ack-" + fingerprint,
            Outcome = AuditOutcomes.Success,
            Reason = "AUDIT_TAMPERED",
            Actor = _options.AcknowledgedBy,
            Detail = string.Create(
                CultureInfo.InvariantCulture,
                $"fingerprint={fingerprint}; resumed after seq {_seq}{(published is null ? "" : $"; published head was seq {published.Seq} in segment {published.Segment:D8}")}"),
            Findings = findings.Take(MaxAcknowledgedFindings).Select(f => f.Key).ToList(),
        };
        return true;
    }

    private const int MaxAcknowledgedFindings = 1000;

    /// <summary>The head stored off the host is ahead of this chain or diverges: another writer, or a rewound log. Stop writing.</summary>
    private void HeadConflict(AuditHead stored)
    {
        _headConflict = string.Create(
            CultureInfo.InvariantCulture,
            $"BRK1041: the audit head published for node {Node} is seq {stored.Seq} in segment {stored.Segment:D8}, ahead of or different from this log: another process writes as node {Node}, or records were removed; restart to check the log");
        Log.HeadConflict(_logger, Node, stored.Seq);
    }

    /// <summary>
    /// At start: the node's last segment may have been cut short by a crash. Seal it with the
    /// records that are complete (a torn last line stays in the file, outside the checkpoint) and
    /// chain the next segment from its last complete record.
    /// </summary>
    private void Recover()
    {
        var segments = AuditFiles.Segments(Directory, Node);
        if (segments.Count == 0)
        {
            return;
        }

        var (number, path) = segments[^1];
        var summary = AuditSegmentSummary.Read(path);
        var startPrev = summary.FirstPrev;
        var lastSeq = summary.LastSeq;
        var lastHash = summary.LastHash;
        if (summary.Count == 0)
        {
            // Only a torn line: the chain passes through from the segment before it.
            var before = segments.Count > 1 ? AuditSegmentSummary.Read(segments[^2].Path) : null;
            startPrev = before?.LastHash ?? AuditChain.Genesis;
            lastSeq = before?.LastSeq ?? 0;
            lastHash = startPrev;
        }

        var checkpointPath = Path.Combine(Directory, AuditChain.CheckpointFileName(Node, number));
        var computed = new AuditCheckpoint
        {
            Node = Node,
            Segment = Path.GetFileName(path),
            FirstSeq = summary.Count == 0 ? lastSeq + 1 : summary.FirstSeq,
            LastSeq = lastSeq,
            Count = summary.Count,
            StartPrev = startPrev!,
            LastHash = lastHash!,
            SealedAt = _time.GetUtcNow(),
        };
        var existing = File.Exists(checkpointPath) ? AuditFiles.TryReadCheckpoint(checkpointPath) : null;
        AuditCheckpoint checkpoint;
        if (existing is not null)
        {
            // The integrity check passed, so the checkpoint matches; a mismatch here is never re-signed.
            checkpoint = Same(existing, computed) && AuditChain.SignatureValid(existing, _key)
                ? existing
                : throw new InvalidDataException($"Audit checkpoint '{checkpointPath}' does not match its segment; run 'brokerctl audit verify'.");
        }
        else
        {
            // A crash left the segment open: seal what is complete (the torn tail stays outside).
            checkpoint = AuditChain.Sign(computed, _key);
            WriteCheckpointFile(checkpointPath, checkpoint);
        }

        if (summary.TornBytes > 0)
        {
            Log.TornTail(_logger, path, summary.TornBytes);
        }

        _segment = number;
        _seq = checkpoint.LastSeq;
        _lastHash = checkpoint.LastHash;
        _pendingCheckpoint = checkpoint;
    }

    private static bool Same(AuditCheckpoint a, AuditCheckpoint b) =>
        a.Node == b.Node && a.Segment == b.Segment && a.FirstSeq == b.FirstSeq && a.LastSeq == b.LastSeq
        && a.Count == b.Count && a.StartPrev == b.StartPrev && a.LastHash == b.LastHash;

    private long HighestSegmentOnDisk()
    {
        var segments = AuditFiles.Segments(Directory, Node);
        return segments.Count == 0 ? 0 : segments[^1].Number;
    }

    private static string ResolveNodeId(string? configured, string directory)
    {
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return AuditChain.IsValidNodeId(configured)
                ? configured
                : throw new ArgumentException($"Audit node id '{configured}' must be 1-64 characters of A-Z a-z 0-9 . _ -.");
        }

        var path = Path.Combine(directory, NodeIdFile);
        if (File.Exists(path))
        {
            var stored = File.ReadAllText(path).Trim();
            if (AuditChain.IsValidNodeId(stored))
            {
                return stored;
            }

            throw new InvalidDataException($"'{path}' does not hold a valid node id.");
        }

        var host = new string(Environment.MachineName.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '-').ToArray());
        var generated = $"{(host.Length > 40 ? host[..40] : host)}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";
        File.WriteAllText(path, generated + "\n");
        return generated;
    }

    private static void CreateDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            System.IO.Directory.CreateDirectory(path);
        }
        else
        {
            System.IO.Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    private void CloseQuietly(bool truncate)
    {
        try
        {
            if (truncate && _file is not null)
            {
                // Cut off what a failed batch may have left, so the segment ends at its last durable record.
                _file.SetLength(_length);
                _file.Flush(flushToDisk: true);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            // The verifier reports any leftover as records after the checkpoint.
        }

        try
        {
            _file?.Dispose();
        }
        catch (IOException)
        {
            // The handle is being abandoned because it failed; a second failure adds nothing.
        }

        _file = null;
    }

    /// <summary>Makes a new or renamed file's directory entry durable (POSIX); best effort elsewhere.</summary>
    private static void SyncDirectory(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        try
        {
            var fd = NativeMethods.open(directory, 0 /* O_RDONLY */);
            if (fd >= 0)
            {
                _ = NativeMethods.fsync(fd);
                _ = NativeMethods.close(fd);
            }
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            // No libc: the data itself is still fsynced.
        }
    }

    private sealed record Pending(byte[] Json)
    {
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private static class NativeMethods
    {
        [DllImport("libc", EntryPoint = "open", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        internal static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

        [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        internal static extern int fsync(int fd);

        [DllImport("libc", EntryPoint = "close", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        internal static extern int close(int fd);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 7301, Level = LogLevel.Critical, Message = "BRK1040: audit log {Path} was tampered with ({Count} findings; first: {First}); the node does not start")]
        public static partial void Tampered(ILogger logger, string path, int count, string first);

        [LoggerMessage(EventId = 7302, Level = LogLevel.Critical, Message = "Audit log {Path}: {Count} findings of tampering acknowledged by {Actor}; recorded as audit.tamper_acknowledged and the chain resumes in a new segment")]
        public static partial void TamperAcknowledged(ILogger logger, string path, int count, string actor);

        [LoggerMessage(EventId = 7303, Level = LogLevel.Warning, Message = "The published audit head could not be read at start; it is checked at the first publication instead")]
        public static partial void HeadUnchecked(ILogger logger, Exception exception);

        [LoggerMessage(EventId = 7304, Level = LogLevel.Critical, Message = "BRK1041: the audit head published for node {Node} (seq {Seq}) is ahead of or differs from this log; audit writes stop (fail closed)")]
        public static partial void HeadConflict(ILogger logger, string node, long seq);

        [LoggerMessage(EventId = 6000, Level = LogLevel.Critical, Message = "Audit log {Path} could not be written; {Count} requests refused until it can")]
        public static partial void WriteFailed(ILogger logger, string path, int count, Exception exception);

        [LoggerMessage(EventId = 6001, Level = LogLevel.Warning, Message = "Audit segment {Path} ends with a torn record of {Bytes} bytes (crash mid-write); it was never acknowledged and stays outside the checkpoint")]
        public static partial void TornTail(ILogger logger, string path, long bytes);

        [LoggerMessage(EventId = 6003, Level = LogLevel.Error, Message = "Audit segment {Path} could not be sealed at shutdown; it is sealed at the next start")]
        public static partial void SealFailed(ILogger logger, string path, Exception exception);

        [LoggerMessage(EventId = 6004, Level = LogLevel.Warning, Message = "Audit mirror refused a batch; the records are durable in the local log but missing from the mirror")]
        public static partial void MirrorFailed(ILogger logger, Exception exception);
    }
}
