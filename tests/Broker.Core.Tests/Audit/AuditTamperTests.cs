using System.Text.Json;
using Broker.Core.Audit;

namespace Broker.Core.Tests.Audit;

/// <summary>
/// Cutting the log's tail, or editing it, is reported by verify (file and seq) and stops the
/// node's start; nothing is re-signed; only an acknowledgement of exactly what was found lets
/// it start, and that acknowledgement is itself in the chain. A crash's torn record is not tampering.
/// </summary>
public sealed class AuditTamperTests : IDisposable
{
    private readonly AuditLogFixture _log = new();

    /// <summary>Three or more sealed segments; returns the number of the newest.</summary>
    private async Task<long> WriteSegmentsAsync()
    {
        await _log.WriteAsync(36, segmentMaxBytes: 6 * 1024);
        var segments = AuditFiles.Segments(_log.Directory, "node-a");
        Assert.True(segments.Count >= 3, $"{segments.Count} segments");
        Assert.True(_log.Verify().Ok);
        return segments[^1].Number;
    }

    private static long SeqOf(string line) => JsonDocument.Parse(line).RootElement.GetProperty("seq").GetInt64();

    private AuditTamperedException StartRefused()
    {
        var refused = Assert.Throws<AuditTamperedException>(() => _log.Sink());
        Assert.StartsWith("BRK1040: ", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', refused.Message);
        Assert.Contains("--acknowledge-tamper " + refused.Fingerprint, refused.Message, StringComparison.Ordinal);
        return refused;
    }

    private static void Rewrite(string path, IEnumerable<string> lines) => File.WriteAllText(path, string.Join('\n', lines) + "\n");

    [Fact]
    public async Task Truncating_the_last_sealed_segment_is_reported_and_start_up_refuses_without_re_signing()
    {
        var last = await WriteSegmentsAsync();
        var lines = File.ReadAllLines(_log.Segment(last));
        Rewrite(_log.Segment(last), lines[..^2]);
        var checkpoint = File.ReadAllBytes(_log.Checkpoint(last));

        var problem = Assert.Single(_log.Verify().Problems);
        Assert.Equal((_log.Segment(last), SeqOf(lines[^2])), (problem.File, problem.Seq));
        Assert.Contains("truncated", problem.What, StringComparison.Ordinal);

        var refused = StartRefused();
        Assert.Contains(Path.GetFileName(_log.Segment(last)), refused.Message, StringComparison.Ordinal);
        Assert.Equal(checkpoint, File.ReadAllBytes(_log.Checkpoint(last)));
        Assert.Empty(Directory.GetFiles(_log.Directory, "*.mismatch-*"));
        Assert.Single(_log.Verify().Problems);
    }

    [Fact]
    public async Task Deleting_the_newest_segment_with_its_checkpoint_is_caught_by_the_published_head()
    {
        var last = await WriteSegmentsAsync();
        var head = _log.Heads.Read("node-a")!;
        Assert.Equal(SeqOf(File.ReadLines(_log.Segment(last)).Last()), head.Seq);
        File.Delete(_log.Segment(last));
        File.Delete(_log.Checkpoint(last));

        // On its own the rest of the log is a consistent, shorter log: only the head tells.
        Assert.True(_log.Verify().Ok);
        var result = AuditVerifier.Verify([_log.Directory], new AuditVerifyOptions { CheckpointKey = _log.PublicKey, ExpectedHeads = [head] });

        var problem = Assert.Single(result.Problems);
        var kept = SeqOf(File.ReadLines(_log.Segment(last - 1)).Last());
        Assert.Equal((_log.Segment(last - 1), kept + 1), (problem.File, problem.Seq));
        Assert.Contains($"signed head is at seq {head.Seq}", problem.What, StringComparison.Ordinal);
        StartRefused();
    }

    [Fact]
    public async Task Deleting_one_line_in_the_middle_is_reported_at_the_gap_and_start_up_refuses()
    {
        await WriteSegmentsAsync();
        var lines = File.ReadAllLines(_log.Segment(2)).ToList();
        var deleted = SeqOf(lines[4]);
        lines.RemoveAt(4);
        Rewrite(_log.Segment(2), lines);

        var problem = Assert.Single(_log.Verify().Problems);
        Assert.Equal((_log.Segment(2), 5L, deleted + 1), (problem.File, problem.Line, problem.Seq));
        Assert.Contains($"record(s) {deleted}..{deleted} missing", problem.What, StringComparison.Ordinal);
        StartRefused();
    }

    [Fact]
    public async Task Swapping_two_lines_is_reported_at_the_first_and_start_up_refuses()
    {
        var last = await WriteSegmentsAsync();
        var lines = File.ReadAllLines(_log.Segment(last));
        (lines[2], lines[3]) = (lines[3], lines[2]);
        Rewrite(_log.Segment(last), lines);

        var problem = Assert.Single(_log.Verify().Problems);
        Assert.Equal((_log.Segment(last), 3L, SeqOf(lines[2])), (problem.File, problem.Line, problem.Seq));
        Assert.Contains("reordered", problem.What, StringComparison.Ordinal);
        StartRefused();
    }

    [Fact]
    public async Task Every_gap_and_every_moved_aside_checkpoint_is_reported_not_only_the_first()
    {
        var last = await WriteSegmentsAsync();
        foreach (var number in new[] { 1L, last })
        {
            var lines = File.ReadAllLines(_log.Segment(number)).ToList();
            lines.RemoveAt(3);
            Rewrite(_log.Segment(number), lines);
        }

        // What an older version left when it re-signed a truncated segment.
        File.Copy(_log.Checkpoint(2), _log.Checkpoint(2) + ".mismatch-1764000000");

        var problems = _log.Verify().Problems;

        Assert.Equal(3, problems.Count);
        Assert.Contains(problems, p => p.File == _log.Checkpoint(2) + ".mismatch-1764000000" && p.Seq is not null);
        Assert.Contains(problems, p => p.File == _log.Segment(1) && p.What.Contains("missing", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.File == _log.Segment(last) && p.What.Contains("missing", StringComparison.Ordinal));
        StartRefused();
    }

    [Fact]
    public async Task A_torn_final_record_from_a_crash_is_recovered_and_logged_not_tampering()
    {
        await _log.WriteAsync(5);

        // What kill -9 leaves: no checkpoint yet, and half a record at the end.
        File.Delete(_log.Checkpoint(1));
        await File.AppendAllTextAsync(_log.Segment(1), "{\"seq\":7,\"node\":\"node-a\",\"prev\":\"ab");
        await using (var sink = _log.Sink())
        {
            await sink.AppendAsync(AuditLogFixture.Event(9), CancellationToken.None);
        }

        var result = _log.Verify();
        Assert.True(result.Ok, result.Problem?.ToString());
        Assert.Contains(result.Notes, n => n.Contains("truncated tail after last durable record", StringComparison.Ordinal));
        Assert.Empty(result.Acknowledgements);
    }

    [Fact]
    public async Task Acknowledging_exactly_what_was_found_starts_the_node_and_records_it_in_the_chain()
    {
        var last = await WriteSegmentsAsync();
        var lines = File.ReadAllLines(_log.Segment(last));
        Rewrite(_log.Segment(last), lines[..^2]);
        var refused = StartRefused();

        // A stale or guessed fingerprint acknowledges nothing.
        Assert.Throws<AuditTamperedException>(() => _log.Sink(acknowledge: "0123456789abcdef"));

        await using (var sink = _log.Sink(acknowledge: refused.Fingerprint))
        {
            await sink.AppendAsync(AuditLogFixture.Event(100), CancellationToken.None);
        }

        var first = File.ReadLines(_log.Segment(last + 1)).First();
        var acknowledgement = JsonSerializer.Deserialize(first, AuditJsonContext.Default.AuditEvent)!;
        Assert.Equal((7001, "audit.tamper_acknowledged", "operator:test"), (acknowledgement.EventId, acknowledgement.Type, acknowledgement.Actor));
        Assert.Equal(refused.Findings.Select(f => f.Key), acknowledgement.Findings);
        Assert.Contains(refused.Fingerprint, acknowledgement.Detail, StringComparison.Ordinal);

        // The chain resumes from the signed end of the truncated segment; the finding stays on record.
        Assert.Equal(SeqOf(lines[^1]) + 1, acknowledgement.Seq);
        var result = _log.Verify();
        var problem = Assert.Single(result.Problems);
        Assert.True(result.IsAcknowledged(problem));
        Assert.Empty(result.Unacknowledged);

        // The next start needs no acknowledgement for what is already acknowledged.
        await using (var again = _log.Sink())
        {
            await again.AppendAsync(AuditLogFixture.Event(101), CancellationToken.None);
        }

        Assert.Empty(_log.Verify().Unacknowledged);
    }

    public void Dispose() => _log.Dispose();
}
