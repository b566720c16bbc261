using System.Security.Cryptography;
using Broker.Core.Audit;
using Microsoft.Extensions.Logging.Abstractions;

namespace Broker.Core.Tests.Audit;

/// <summary>One audit folder, one writer: a second sink on a folder in use is refused before it reads or repairs anything.</summary>
public sealed class AuditFolderLockTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("audit-lock-").FullName;
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    [Fact]
    public async Task A_second_sink_on_a_folder_in_use_is_refused_with_BRK1160_until_the_first_is_disposed()
    {
        var first = Open();
        await first.AppendAsync(Event("t-1"), CancellationToken.None);
        var segments = AuditFiles.All(_directory).Select(s => (s.Path, new FileInfo(s.Path).Length)).ToList();

        var refused = Assert.Throws<AuditFolderLockedException>(() => Open());
        Assert.StartsWith("BRK1160: ", refused.Message, StringComparison.Ordinal);
        Assert.Contains(_directory, refused.Message, StringComparison.Ordinal);

        // The refused sink created no segment and cut nothing from the open one.
        Assert.Equal(segments, AuditFiles.All(_directory).Select(s => (s.Path, new FileInfo(s.Path).Length)).ToList());

        await first.AppendAsync(Event("t-2"), CancellationToken.None);
        await first.DisposeAsync();
        await using (var next = Open())
        {
            await next.AppendAsync(Event("t-3"), CancellationToken.None);
        }

        var report = AuditVerifier.Verify([_directory], _key);
        Assert.True(report.Ok, string.Join("\n", report.Problems));
    }

    private FileAuditSink Open() => new(new FileAuditOptions { Directory = _directory, CheckpointKey = _key }, TimeProvider.System, NullLogger<FileAuditSink>.Instance);

    private static AuditEvent Event(string task) => new()
    {
        EventId = AuditEventTypes.TaskEnded.Id,
        Type = AuditEventTypes.TaskEnded.Name,
        Time = DateTimeOffset.UtcNow,
        CorrelationId = task,
        Outcome = AuditOutcomes.Success,
        TaskId = task,
    };

    public void Dispose()
    {
        _key.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
