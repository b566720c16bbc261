using System.Security.Cryptography;
using Broker.Core.Audit;
using Microsoft.Extensions.Logging.Abstractions;

namespace Broker.Core.Tests.Audit;

/// <summary>A real audit folder on disk, its checkpoint key, and sinks writing into it.</summary>
public sealed class AuditLogFixture : IDisposable
{
    public AuditLogFixture()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("broker-audit-").FullName;
        Key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        PublicKey = ECDsa.Create();
        PublicKey.ImportSubjectPublicKeyInfo(Key.ExportSubjectPublicKeyInfo(), out _);
    }

    public string Directory { get; }

    public ECDsa Key { get; }

    /// <summary>The public half only, as an auditor would pin it.</summary>
    public ECDsa PublicKey { get; }

    /// <summary>Where sinks built by this fixture publish their chain heads (off the host, as Redis would keep them).</summary>
    public InMemoryAuditHeadStore Heads { get; } = new();

    public FileAuditSink Sink(TimeProvider? time = null, long segmentMaxBytes = 64L * 1024 * 1024, string node = "node-a", string? directory = null, string? acknowledge = null, IAuditMirror? mirror = null) =>
        new(
            new FileAuditOptions
            {
                Directory = directory ?? Directory,
                NodeId = node,
                SegmentMaxBytes = segmentMaxBytes,
                CheckpointKey = Key,
                RetryInterval = TimeSpan.FromMilliseconds(50),
                HeadStore = Heads,
                AcknowledgeTamper = acknowledge,
                AcknowledgedBy = "operator:test",
                Mirror = mirror,
            },
            time ?? TimeProvider.System,
            NullLogger<FileAuditSink>.Instance);

    public static AuditEvent Event(int i, string? token = null) => new()
    {
        EventId = AuditEventTypes.CredentialIssued.Id,
        Type = AuditEventTypes.CredentialIssued.Name,
        Time = DateTimeOffset.UnixEpoch.AddSeconds(i),
        CorrelationId = $"corr-{i:D4}",
        Outcome = AuditOutcomes.Success,
        Subject = "spiffe://example.org/agents/planner",
        TaskId = $"task-{i % 3}",
        TokenId = token ?? $"tok-{i:D4}",
        Scopes = ["repo:read"],
        Detail = "deploy \"quoted\" text\nwith a newline",
    };

    /// <summary>Writes <paramref name="count"/> events concurrently and closes the sink cleanly.</summary>
    public async Task WriteAsync(int count, long segmentMaxBytes = 64L * 1024 * 1024, int start = 0)
    {
        await using var sink = Sink(segmentMaxBytes: segmentMaxBytes);
        for (var i = start; i < start + count; i++)
        {
            await sink.AppendAsync(Event(i), CancellationToken.None);
        }
    }

    public string Segment(long number, string node = "node-a") => Path.Combine(Directory, AuditChain.SegmentFileName(node, number));

    public string Checkpoint(long number, string node = "node-a") => Path.Combine(Directory, AuditChain.CheckpointFileName(node, number));

    public AuditVerifyResult Verify(bool pinned = true) => AuditVerifier.Verify([Directory], pinned ? PublicKey : null);

    public void Dispose()
    {
        Key.Dispose();
        PublicKey.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
