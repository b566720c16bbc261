using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Broker.Core.Audit;

namespace Broker.Core.Tests.Audit;

/// <summary>Each way of tampering with a log is caught, naming the first bad record.</summary>
public sealed class AuditVerifierTests : IDisposable
{
    private readonly AuditLogFixture _log = new();

    /// <summary>Three closed segments of roughly a dozen records each.</summary>
    private async Task<int> WriteThreeSegmentsAsync()
    {
        await _log.WriteAsync(36, segmentMaxBytes: 6 * 1024);
        var segments = AuditFiles.Segments(_log.Directory, "node-a").Count;
        Assert.True(segments >= 3, $"{segments} segments");
        Assert.True(_log.Verify().Ok);
        return segments;
    }

    private static long SeqOf(string line) => JsonDocument.Parse(line).RootElement.GetProperty("seq").GetInt64();

    [Fact]
    public async Task An_untouched_log_verifies_with_the_pinned_key()
    {
        await WriteThreeSegmentsAsync();

        var result = _log.Verify();

        Assert.True(result.Ok);
        Assert.Equal(["node-a"], result.Nodes);
        Assert.DoesNotContain(result.Notes, n => n.Contains("truncated", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Editing_one_byte_names_that_record()
    {
        await WriteThreeSegmentsAsync();
        var path = _log.Segment(2);
        var lines = File.ReadAllLines(path);
        var target = lines[4];
        lines[4] = target.Replace("corr-", "corr_", StringComparison.Ordinal);
        Assert.NotEqual(target, lines[4]);
        await File.WriteAllTextAsync(path, string.Join('\n', lines) + "\n");

        var problem = _log.Verify().Problem!;

        Assert.Equal(path, problem.File);
        Assert.Equal(5, problem.Line);
        Assert.Equal(SeqOf(target), problem.Seq);
        Assert.Contains("altered", problem.What, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Editing_any_single_byte_of_a_closed_segment_is_caught_at_its_record()
    {
        await WriteThreeSegmentsAsync();
        var path = _log.Segment(2);
        var original = await File.ReadAllBytesAsync(path);
        var lineStarts = new List<int> { 0 };
        for (var i = 0; i < original.Length - 1; i++)
        {
            if (original[i] == '\n')
            {
                lineStarts.Add(i + 1);
            }
        }

        // Every 7th byte: letters, digits, quotes, braces, the chain fields and newlines alike.
        for (var offset = 0; offset < original.Length; offset += 7)
        {
            var edited = (byte[])original.Clone();
            edited[offset] = edited[offset] == (byte)'x' ? (byte)'y' : (byte)'x';
            await File.WriteAllBytesAsync(path, edited);

            var result = _log.Verify();

            Assert.False(result.Ok, $"edit at byte {offset} went unnoticed");
            var line = lineStarts.Count(s => s <= offset);
            Assert.Equal(path, result.Problem!.File);
            Assert.True(result.Problem.Line == line || (original[offset] == '\n' && result.Problem.Line == line + 1), $"byte {offset} (line {line}): {result.Problem}");
        }
    }

    [Fact]
    public async Task Deleting_a_record_is_caught_where_it_was()
    {
        await WriteThreeSegmentsAsync();
        var path = _log.Segment(2);
        var lines = File.ReadAllLines(path).ToList();
        var deleted = SeqOf(lines[5]);
        lines.RemoveAt(5);
        await File.WriteAllTextAsync(path, string.Join('\n', lines) + "\n");

        var problem = _log.Verify().Problem!;

        Assert.Equal((path, 6L, deleted + 1), (problem.File, problem.Line, problem.Seq));
        Assert.Contains("missing", problem.What, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reordering_two_records_is_caught_at_the_first()
    {
        await WriteThreeSegmentsAsync();
        var path = _log.Segment(1);
        var lines = File.ReadAllLines(path);
        (lines[3], lines[4]) = (lines[4], lines[3]);
        await File.WriteAllTextAsync(path, string.Join('\n', lines) + "\n");

        var problem = _log.Verify().Problem!;

        Assert.Equal((path, 4L, 5L), (problem.File, problem.Line, problem.Seq));
        Assert.Contains("reordered", problem.What, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cutting_bytes_out_of_the_middle_is_caught_at_the_damaged_record()
    {
        await WriteThreeSegmentsAsync();
        var path = _log.Segment(2);
        var bytes = await File.ReadAllBytesAsync(path);
        var text = Encoding.UTF8.GetString(bytes);
        var third = text.IndexOf('\n', text.IndexOf('\n', text.IndexOf('\n') + 1) + 1) + 1;
        var cut = text[..(third + 40)] + text[(third + 500)..];
        await File.WriteAllTextAsync(path, cut);

        var problem = _log.Verify().Problem!;

        Assert.Equal((path, 4L), (problem.File, problem.Line));
    }

    [Fact]
    public async Task Truncating_a_closed_segment_is_caught_by_its_checkpoint()
    {
        await WriteThreeSegmentsAsync();
        var path = _log.Segment(1);
        var lines = File.ReadAllLines(path);
        await File.WriteAllTextAsync(path, string.Join('\n', lines[..^2]) + "\n");

        var problem = _log.Verify().Problem!;

        Assert.Equal((path, (long)lines.Length - 1), (problem.File, problem.Line));
        Assert.Contains("truncated", problem.What, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Swapping_two_segments_is_caught()
    {
        await WriteThreeSegmentsAsync();
        var two = await File.ReadAllBytesAsync(_log.Segment(2));
        var three = await File.ReadAllBytesAsync(_log.Segment(3));
        await File.WriteAllBytesAsync(_log.Segment(2), three);
        await File.WriteAllBytesAsync(_log.Segment(3), two);

        var problem = _log.Verify().Problem!;

        Assert.Equal((_log.Segment(2), 1L), (problem.File, problem.Line));
    }

    [Fact]
    public async Task A_segment_from_another_log_is_caught()
    {
        await WriteThreeSegmentsAsync();
        using var other = new AuditLogFixture();
        await other.WriteAsync(36, segmentMaxBytes: 6 * 1024);
        File.Copy(other.Segment(2), _log.Segment(2), overwrite: true);
        File.Copy(other.Checkpoint(2), _log.Checkpoint(2), overwrite: true);

        var problem = _log.Verify().Problem!;

        Assert.Equal(_log.Segment(2), problem.File);
    }

    [Fact]
    public async Task Deleting_a_whole_segment_is_caught()
    {
        await WriteThreeSegmentsAsync();
        File.Delete(_log.Segment(2));

        Assert.Contains("missing", _log.Verify().Problem!.What, StringComparison.Ordinal);

        File.Delete(_log.Checkpoint(2));
        var problem = _log.Verify().Problem!;
        Assert.Equal(_log.Segment(3), problem.File);
        Assert.Contains("00000002", problem.What, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_forged_checkpoint_is_caught()
    {
        await WriteThreeSegmentsAsync();
        var path = _log.Checkpoint(1);
        var checkpoint = AuditFiles.TryReadCheckpoint(path)!;

        // Re-signed by someone else's key: only a pinned key tells.
        using var attacker = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var forged = AuditChain.Sign(checkpoint with { Count = checkpoint.Count - 1, LastSeq = checkpoint.LastSeq - 1 }, attacker);
        await File.WriteAllTextAsync(path, JsonSerializer.Serialize(forged, AuditJsonContext.Default.AuditCheckpoint));
        var problem = _log.Verify().Problem!;
        Assert.Equal(path, problem.File);
        Assert.Contains("not the audit key", problem.What, StringComparison.Ordinal);

        // Edited without re-signing: caught even without a pinned key.
        await File.WriteAllTextAsync(path, JsonSerializer.Serialize(checkpoint with { LastHash = new string('a', 64) }, AuditJsonContext.Default.AuditCheckpoint));
        problem = _log.Verify(pinned: false).Problem!;
        Assert.Equal(path, problem.File);
        Assert.Contains("signature is invalid", problem.What, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_record_appended_to_a_closed_segment_is_caught()
    {
        await WriteThreeSegmentsAsync();
        var path = _log.Segment(1);
        var lines = File.ReadAllLines(path);
        var last = lines[^1];
        var seq = SeqOf(last);
        var forged = $"{{\"seq\":{seq + 1},\"node\":\"node-a\",\"prev\":\"{AuditChain.Hash(Encoding.UTF8.GetBytes(last))}\",\"event_id\":2000,\"type\":\"credential.issued\"}}";
        await File.AppendAllTextAsync(path, forged + "\n");

        var problem = _log.Verify().Problem!;

        Assert.Equal((path, (long)lines.Length + 1), (problem.File, problem.Line));
    }

    public void Dispose() => _log.Dispose();
}
