using System.Text;
using Broker.Core.Audit;
using Microsoft.Extensions.Logging.Abstractions;

namespace Broker.Core.Tests.Audit;

public sealed class AuditMirrorTests : IDisposable
{
    private readonly AuditLogFixture _log = new();

    [Fact]
    public async Task The_mirror_gets_every_durable_record_exactly_as_written_in_chain_order()
    {
        var mirror = new CollectingMirror();
        await using (var sink = Sink(mirror))
        {
            await Task.WhenAll(Enumerable.Range(0, 50).Select(i => sink.AppendAsync(AuditLogFixture.Event(i), CancellationToken.None).AsTask()));
        }

        var onDisk = File.ReadAllLines(_log.Segment(1));
        Assert.Equal(50, onDisk.Length);
        Assert.Equal(onDisk, mirror.Lines);
    }

    [Fact]
    public async Task A_failing_mirror_never_fails_or_loses_the_local_record()
    {
        await using var sink = Sink(new ThrowingMirror());

        for (var i = 0; i < 5; i++)
        {
            await sink.AppendAsync(AuditLogFixture.Event(i), CancellationToken.None);
        }

        Assert.True(sink.IsHealthy);
        Assert.Equal(5, File.ReadAllLines(_log.Segment(1)).Length);
        Assert.True(sink.MirrorFailures >= 1);
    }

    [Fact]
    public void Reader_returns_only_complete_lines_and_then_only_new_ones()
    {
        var segment = Path.Combine(_log.Directory, AuditChain.SegmentFileName("node-a", 1));
        File.WriteAllText(segment, Line(1) + "\n" + Line(2) + "\n" + Line(3)[..10]);
        var reader = new AuditReader([_log.Directory]);

        Assert.Equal([1L, 2L], reader.ReadNew().Select(r => r.Event.Seq!.Value));

        File.WriteAllText(segment, Line(1) + "\n" + Line(2) + "\n" + Line(3) + "\n");
        Assert.Equal([3L], reader.ReadNew().Select(r => r.Event.Seq!.Value));
        Assert.Empty(reader.ReadNew());
    }

    [Fact]
    public void Filters_match_by_task_token_type_band_and_time()
    {
        var records = Enumerable.Range(0, 9)
            .Select(i => AuditLogFixture.Event(i) with { Seq = i + 1 })
            .Select(e => new AuditLine(e, ""))
            .ToList();

        Assert.Equal(3, new AuditFilter(null, "task-1", null, null, null, null, null).Apply(records, 100).Count);
        Assert.Single(new AuditFilter(null, null, "tok-0004", null, null, null, null).Apply(records, 100));
        Assert.Equal(9, new AuditFilter(null, null, null, null, "2", null, null).Apply(records, 100).Count);
        Assert.Empty(new AuditFilter(null, null, null, null, "approval.", null, null).Apply(records, 100));
        var window = new AuditFilter(null, null, null, null, "credential.issued", DateTimeOffset.UnixEpoch.AddSeconds(2), DateTimeOffset.UnixEpoch.AddSeconds(5)).Apply(records, 2);
        Assert.Equal(["tok-0003", "tok-0004"], window.Select(r => r.Event.TokenId!));
    }

    public void Dispose() => _log.Dispose();

    private static string Line(long seq) =>
        $$"""{"seq":{{seq}},"node":"node-a","prev":"x","event_id":2000,"type":"credential.issued","time":"2030-01-01T00:00:00+00:00","correlation_id":"c","outcome":"success"}""";

    private FileAuditSink Sink(IAuditMirror mirror) => new(
        new FileAuditOptions { Directory = _log.Directory, NodeId = "node-a", CheckpointKey = _log.Key, Mirror = mirror },
        TimeProvider.System,
        NullLogger<FileAuditSink>.Instance);

    private sealed class CollectingMirror : IAuditMirror
    {
        public List<string> Lines { get; } = [];

        public void Publish(ReadOnlyMemory<byte> lines) =>
            Lines.AddRange(Encoding.UTF8.GetString(lines.Span).Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    private sealed class ThrowingMirror : IAuditMirror
    {
        public void Publish(ReadOnlyMemory<byte> lines) => throw new InvalidOperationException("mirror down");
    }
}
