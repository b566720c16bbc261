using Broker.Core.Audit;
using CsCheck;

namespace Broker.Core.Tests.Audit;

/// <summary>
/// Random single-byte edits anywhere in a sealed log (segments and checkpoint files, any byte
/// value, invalid UTF-8 included) are always refused, naming the edited file, and never throw.
/// </summary>
public sealed class AuditVerifierFuzzTests : IDisposable
{
    private readonly AuditLogFixture _log = new();

    [Fact]
    public async Task Any_single_byte_edit_is_reported_at_the_edited_file_and_never_throws()
    {
        await _log.WriteAsync(30, segmentMaxBytes: 5 * 1024);
        var files = Directory.GetFiles(_log.Directory)
            .Where(f => f.EndsWith(AuditChain.SegmentSuffix, StringComparison.Ordinal) || f.EndsWith(AuditChain.CheckpointSuffix, StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToArray();
        Assert.True(files.Length >= 4, $"{files.Length} files");
        var originals = files.Select(File.ReadAllBytes).ToArray();
        Assert.True(_log.Verify().Ok);

        var edits =
            from file in Gen.Int[0, files.Length - 1]
            from offset in Gen.Int[0, originals[file].Length - 1]
            from delta in Gen.Int[1, 255]
            select (file, offset, value: (byte)((originals[file][offset] + delta) % 256));

        edits.Sample(
            edit =>
            {
                var bytes = (byte[])originals[edit.file].Clone();
                bytes[edit.offset] = edit.value;
                File.WriteAllBytes(files[edit.file], bytes);
                try
                {
                    var result = _log.Verify();
                    var what = $"byte {edit.offset} of {Path.GetFileName(files[edit.file])} set to 0x{edit.value:x2}";
                    Assert.False(result.Ok, what + " went unnoticed");
                    Assert.True(
                        result.Problem!.File == files[edit.file] || SameSegment(result.Problem.File, files[edit.file]),
                        $"{what}: reported {result.Problem}");
                }
                finally
                {
                    File.WriteAllBytes(files[edit.file], originals[edit.file]);
                }
            },
            iter: 400,
            threads: 1);
    }

    /// <summary>An edit to a checkpoint file may be reported at its segment (and the other way round).</summary>
    private static bool SameSegment(string reported, string edited) =>
        Path.ChangeExtension(reported, null) == Path.ChangeExtension(edited, null);

    public void Dispose() => _log.Dispose();
}
