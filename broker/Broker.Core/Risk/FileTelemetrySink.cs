using System.Globalization;
using System.Text;

namespace Broker.Core.Risk;

/// <summary>
/// Telemetry as JSON lines in its own file (owner-only on Unix), apart from the audit file. The
/// latest records are also kept in memory so this node can answer a tail without Redis.
/// </summary>
public sealed class FileTelemetrySink : ITelemetrySink, ITelemetryReader, IDisposable
{
    public const int KeptInMemory = 1000;

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly FileStream _file;
    private readonly LinkedList<(long Sequence, TelemetryRecord Record)> _recent = new();
    private long _sequence;

    public FileTelemetrySink(string path)
    {
        Path = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        var options = new FileStreamOptions { Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.Read };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        _file = new FileStream(Path, options);
    }

    public string Path { get; }

    public async ValueTask AppendAsync(TelemetryRecord record, CancellationToken cancellationToken)
    {
        var line = Encoding.UTF8.GetBytes(record.ToJson() + "\n");
        await _gate.WaitAsync(cancellationToken);
        try
        {
            await _file.WriteAsync(line, cancellationToken);
            await _file.FlushAsync(cancellationToken);
            _recent.AddLast((++_sequence, record));
            if (_recent.Count > KeptInMemory)
            {
                _recent.RemoveFirst();
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask<TelemetryPage> ReadAsync(string? after, int limit, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var items = after is not null && long.TryParse(after, NumberStyles.None, CultureInfo.InvariantCulture, out var cursor)
                ? _recent.Where(r => r.Sequence > cursor).Take(limit).ToList()
                : _recent.Skip(Math.Max(0, _recent.Count - limit)).ToList();
            var next = items.Count > 0 ? items[^1].Sequence.ToString(CultureInfo.InvariantCulture) : after ?? _sequence.ToString(CultureInfo.InvariantCulture);
            return new TelemetryPage(items.Select(i => i.Record).ToList(), next);
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose()
    {
        _file.Dispose();
        _gate.Dispose();
    }
}
