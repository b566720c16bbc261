using System.Threading.Channels;
using Broker.Core.Errors;
using Microsoft.Extensions.Logging;

namespace Broker.Core.Audit;

public sealed class FileAuditOptions
{
    /// <summary>The append-only audit file (required).</summary>
    public string Path { get; set; } = "";

    /// <summary>Most records written under one fsync.</summary>
    public int MaxBatch { get; set; } = 512;
}

/// <summary>
/// Appends audit events as JSON lines and makes them durable with group commit: one writer
/// drains every waiting event, writes them, fsyncs once, then releases all their callers. No
/// caller returns before its line is on disk. When the file cannot be written the batch fails
/// with AUDIT_UNAVAILABLE and the next batch tries to reopen it, so the broker resumes by itself.
/// </summary>
public sealed partial class FileAuditSink : IAuditSink, IAsyncDisposable
{
    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly FileAuditOptions _options;
    private readonly ILogger<FileAuditSink> _logger;
    private readonly Task _writer;
    private FileStream? _file;
    private volatile bool _healthy = true;

    public FileAuditSink(FileAuditOptions options, ILogger<FileAuditSink> logger)
    {
        if (string.IsNullOrWhiteSpace(options.Path))
        {
            throw new ArgumentException("An audit file path is required.", nameof(options));
        }

        _options = options;
        _logger = logger;
        Open();
        _writer = Task.Run(WriteLoopAsync);
    }

    /// <summary>False after the last batch failed to become durable; true again once one succeeds.</summary>
    public bool IsHealthy => _healthy;

    public ValueTask AppendAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
    {
        var pending = new Pending(AuditJsonContext.ToLine(auditEvent));
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
        await _writer;
        _file?.Dispose();
    }

    private async Task WriteLoopAsync()
    {
        var batch = new List<Pending>(_options.MaxBatch);
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync())
        {
            batch.Clear();
            while (batch.Count < _options.MaxBatch && reader.TryRead(out var item))
            {
                batch.Add(item);
            }

            try
            {
                var file = _file ?? Open();
                foreach (var item in batch)
                {
                    file.Write(item.Line);
                }

                file.Flush(flushToDisk: true);
                _healthy = true;
                foreach (var item in batch)
                {
                    item.Done.TrySetResult();
                }
            }
            catch (Exception ex)
            {
                _healthy = false;
                Log.WriteFailed(_logger, _options.Path, batch.Count, ex);
                CloseQuietly();
                var failure = BrokerErrors.Unavailable(BrokerErrors.AuditUnavailable, "The audit log cannot be written; the request was not completed.", ex);
                foreach (var item in batch)
                {
                    item.Done.TrySetException(failure);
                }
            }
        }
    }

    private FileStream Open()
    {
        var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(_options.Path));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        // A partially written last line (crash mid-write) must not glue onto the next record.
        var needsNewline = File.Exists(_options.Path) && EndsWithoutNewline(_options.Path);
        var fileOptions = new FileStreamOptions { Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.Read, BufferSize = 64 * 1024 };
        if (!OperatingSystem.IsWindows())
        {
            // Identity events are for auditors, not for every local user.
            fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        _file = new FileStream(_options.Path, fileOptions);
        if (needsNewline)
        {
            _file.WriteByte((byte)'\n');
        }

        return _file;
    }

    private static bool EndsWithoutNewline(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        if (stream.Length == 0)
        {
            return false;
        }

        stream.Seek(-1, SeekOrigin.End);
        return stream.ReadByte() != '\n';
    }

    private void CloseQuietly()
    {
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

    private sealed record Pending(byte[] Line)
    {
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 6000, Level = LogLevel.Critical, Message = "Audit log {Path} could not be written; {Count} requests refused until it can")]
        public static partial void WriteFailed(ILogger logger, string path, int count, Exception exception);
    }
}
