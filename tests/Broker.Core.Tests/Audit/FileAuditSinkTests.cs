using System.Text.Json;
using Broker.Core.Audit;
using Broker.Core.Errors;
using Microsoft.Extensions.Time.Testing;

namespace Broker.Core.Tests.Audit;

public sealed class FileAuditSinkTests : IDisposable
{
    private readonly AuditLogFixture _log = new();

    [Fact]
    public async Task Records_carry_seq_node_and_the_hash_of_the_record_before()
    {
        await _log.WriteAsync(5);

        var lines = File.ReadAllLines(_log.Segment(1));
        Assert.Equal(5, lines.Length);
        var prev = AuditChain.Genesis;
        for (var i = 0; i < lines.Length; i++)
        {
            Assert.StartsWith($"{{\"seq\":{i + 1},\"node\":\"node-a\",\"prev\":\"{prev}\",", lines[i], StringComparison.Ordinal);
            prev = AuditChain.Hash(System.Text.Encoding.UTF8.GetBytes(lines[i]));
        }

        var parsed = JsonSerializer.Deserialize(lines[0], AuditJsonContext.Default.AuditEvent)!;
        Assert.Equal(1, parsed.Seq);
        Assert.Equal("deploy \"quoted\" text\nwith a newline", parsed.Detail);
        Assert.True(_log.Verify().Ok);
    }

    [Fact]
    public async Task Concurrent_callers_share_fsyncs_and_all_are_durable_when_released()
    {
        await using var sink = _log.Sink();
        var before = sink.Flushes;

        await Task.WhenAll(Enumerable.Range(0, 500).Select(i => sink.AppendAsync(AuditLogFixture.Event(i), CancellationToken.None).AsTask()));

        Assert.True(sink.Flushes - before < 500, $"{sink.Flushes - before} fsyncs for 500 records");
        Assert.Equal(500, File.ReadAllLines(_log.Segment(1)).Length);
    }

    [Fact]
    public async Task Records_queued_while_a_batch_is_committed_are_written_together_by_the_next_fsync()
    {
        using var mirror = new GatedMirror();
        await using var sink = _log.Sink(mirror: mirror);
        var first = sink.AppendAsync(AuditLogFixture.Event(0), CancellationToken.None).AsTask();

        // The writer holds in the mirror, after the first batch's fsync, while a burst arrives.
        await mirror.Entered.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await first;
        var afterFirst = sink.Flushes;
        var burst = Enumerable.Range(1, 40).Select(i => sink.AppendAsync(AuditLogFixture.Event(i), CancellationToken.None).AsTask()).ToArray();
        mirror.Release();
        await Task.WhenAll(burst);

        Assert.Equal(1, sink.Flushes - afterFirst);
        Assert.Equal(41, File.ReadAllLines(_log.Segment(1)).Length);
    }

    [Fact]
    public async Task The_writer_is_its_own_named_thread_and_is_gone_once_the_sink_is_disposed()
    {
        using var mirror = new GatedMirror();
        mirror.Release();
        var sink = _log.Sink(mirror: mirror);
        await sink.AppendAsync(AuditLogFixture.Event(0), CancellationToken.None);
        var writer = await mirror.Entered.Task.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal("broker-audit-writer", writer.Name);
        Assert.False(writer.IsThreadPoolThread);
        Assert.True(writer.IsBackground);
        Assert.True(writer.IsAlive);

        await sink.DisposeAsync();
        Assert.False(writer.IsAlive);
    }

    [Fact]
    public async Task Segments_roll_by_size_each_closed_one_signed_and_named_by_the_next()
    {
        await _log.WriteAsync(60, segmentMaxBytes: 4096);

        var segments = AuditFiles.Segments(_log.Directory, "node-a");
        Assert.True(segments.Count >= 3, $"{segments.Count} segments");
        foreach (var (number, path) in segments)
        {
            Assert.True(File.Exists(_log.Checkpoint(number)), $"checkpoint of segment {number}");
            if (number > 1)
            {
                Assert.Contains("\"type\":\"audit.checkpoint\"", File.ReadLines(path).First(), StringComparison.Ordinal);
            }
        }

        var result = _log.Verify();
        Assert.True(result.Ok, result.Problem?.ToString());
        Assert.Equal(60 + segments.Count - 1, result.Records);
        Assert.True(result.Checkpoints >= 2 * (segments.Count - 1));
    }

    [Fact]
    public async Task Segments_roll_by_age_on_the_clock()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2030-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await using (var sink = _log.Sink(time))
        {
            await sink.AppendAsync(AuditLogFixture.Event(1), CancellationToken.None);
            time.Advance(TimeSpan.FromMinutes(59));
            await sink.AppendAsync(AuditLogFixture.Event(2), CancellationToken.None);
            Assert.Single(AuditFiles.Segments(_log.Directory, "node-a"));

            time.Advance(TimeSpan.FromMinutes(2));
            await sink.AppendAsync(AuditLogFixture.Event(3), CancellationToken.None);
            Assert.Equal(2, AuditFiles.Segments(_log.Directory, "node-a").Count);
            Assert.True(File.Exists(_log.Checkpoint(1)));
        }

        Assert.True(_log.Verify().Ok);
    }

    [Fact]
    public async Task A_restart_continues_the_chain_in_a_new_segment()
    {
        await _log.WriteAsync(5);
        await _log.WriteAsync(5, start: 5);

        var result = _log.Verify();
        Assert.True(result.Ok, result.Problem?.ToString());
        Assert.Equal(11, result.Records); // ten events and the checkpoint record opening segment 2
        Assert.StartsWith("{\"seq\":6,", File.ReadLines(_log.Segment(2)).First(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task After_a_crash_mid_write_the_torn_tail_is_reported_and_the_chain_continues()
    {
        await _log.WriteAsync(5);

        // What kill -9 leaves: no checkpoint, and half a record at the end.
        File.Delete(_log.Checkpoint(1));
        await File.AppendAllTextAsync(_log.Segment(1), "{\"seq\":6,\"node\":\"node-a\",\"prev\":\"ab");
        await _log.WriteAsync(3, start: 5);

        var result = _log.Verify();
        Assert.True(result.Ok, result.Problem?.ToString());
        Assert.Contains(result.Notes, n => n.Contains("truncated tail after last durable record", StringComparison.Ordinal));
        Assert.StartsWith("{\"seq\":6,", File.ReadLines(_log.Segment(2)).First(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_removed_audit_folder_refuses_with_AUDIT_UNAVAILABLE_until_it_is_back()
    {
        await using var sink = _log.Sink();
        await sink.AppendAsync(AuditLogFixture.Event(1), CancellationToken.None);

        Directory.Delete(_log.Directory, recursive: true);
        var refused = await Assert.ThrowsAsync<BrokerException>(async () => await sink.AppendAsync(AuditLogFixture.Event(2), CancellationToken.None));
        Assert.Equal(BrokerErrors.AuditUnavailable, refused.Reason);
        Assert.False(sink.IsHealthy);

        // The sink never recreates a vanished folder itself: storage that disappeared must come back.
        refused = await Assert.ThrowsAsync<BrokerException>(async () => await sink.AppendAsync(AuditLogFixture.Event(3), CancellationToken.None));
        Assert.Equal(BrokerErrors.AuditUnavailable, refused.Reason);

        Directory.CreateDirectory(_log.Directory);
        await sink.AppendAsync(AuditLogFixture.Event(4), CancellationToken.None);
        Assert.True(sink.IsHealthy);
        Assert.Contains("\"token_id\":\"tok-0004\"", File.ReadAllText(_log.Segment(2)), StringComparison.Ordinal);

        // The lost segment is not silently forgotten.
        var result = _log.Verify();
        Assert.False(result.Ok);
        Assert.Contains("missing", result.Problem!.What, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_segment_removed_behind_the_broker_fails_that_batch_and_writing_resumes_in_a_new_segment()
    {
        await using var sink = _log.Sink();
        await sink.AppendAsync(AuditLogFixture.Event(1), CancellationToken.None);

        File.Delete(_log.Segment(1));
        var refused = await Assert.ThrowsAsync<BrokerException>(async () => await sink.AppendAsync(AuditLogFixture.Event(2), CancellationToken.None));
        Assert.Equal(BrokerErrors.AuditUnavailable, refused.Reason);

        await sink.AppendAsync(AuditLogFixture.Event(3), CancellationToken.None);
        Assert.True(sink.IsHealthy);
        Assert.DoesNotContain("tok-0002", File.ReadAllText(_log.Segment(2)), StringComparison.Ordinal);
        Assert.Contains("tok-0003", File.ReadAllText(_log.Segment(2)), StringComparison.Ordinal);
        Assert.False(_log.Verify().Ok);
    }

    [Fact]
    public async Task The_sink_refuses_events_that_already_carry_chain_fields()
    {
        await using var sink = _log.Sink();
        Assert.Throws<ArgumentException>(() => { _ = sink.AppendAsync(AuditLogFixture.Event(1) with { Seq = 7 }, CancellationToken.None).AsTask(); });
    }

    public void Dispose() => _log.Dispose();

    /// <summary>Holds the writer where it hands a durable batch to the mirror, until released; reports the writer's thread.</summary>
    private sealed class GatedMirror : IAuditMirror, IDisposable
    {
        private readonly ManualResetEventSlim _gate = new();

        public TaskCompletionSource<Thread> Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Publish(ReadOnlyMemory<byte> lines)
        {
            Entered.TrySetResult(Thread.CurrentThread);
            _gate.Wait(TimeSpan.FromSeconds(30));
        }

        public void Release() => _gate.Set();

        public void Dispose() => _gate.Dispose();
    }
}
