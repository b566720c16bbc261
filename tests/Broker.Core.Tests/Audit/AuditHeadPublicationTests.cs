using Broker.Core.Audit;
using Broker.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Broker.Core.Tests.Audit;

/// <summary>
/// A busy node does not sign and send a head per group commit: with a publish interval, heads
/// moved by many batches go out as one publication of the newest head once the interval passes.
/// </summary>
public sealed class AuditHeadPublicationTests : IDisposable
{
    private readonly AuditLogFixture _log = new();

    [Fact]
    public async Task Heads_moved_within_the_interval_are_published_once_as_the_newest()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var store = new CountingHeadStore(_log.Heads);
        var sink = new FileAuditSink(
            new FileAuditOptions
            {
                Directory = _log.Directory,
                NodeId = "node-a",
                CheckpointKey = _log.Key,
                HeadStore = store,
                HeadPublishInterval = TimeSpan.FromSeconds(1),
            },
            time,
            NullLogger<FileAuditSink>.Instance);
        await using (sink)
        {
            await sink.AppendAsync(AuditLogFixture.Event(0), default);
            await Poll.UntilAsync(() => store.Publications == 1, "the first head published");
            for (var i = 1; i <= 10; i++)
            {
                await sink.AppendAsync(AuditLogFixture.Event(i), default);
            }

            var newest = sink.CurrentHead().Seq;
            Assert.Equal(1, store.Publications);
            Assert.True(_log.Heads.Read("node-a")!.Seq < newest);

            time.Advance(TimeSpan.FromSeconds(1));
            await Poll.UntilAsync(() => _log.Heads.Read("node-a")?.Seq == newest, "the newest head published after the interval");
            Assert.Equal(2, store.Publications);
        }
    }

    public void Dispose() => _log.Dispose();

    private sealed class CountingHeadStore(IAuditHeadStore inner) : IAuditHeadStore
    {
        private int _publications;

        public int Publications => Volatile.Read(ref _publications);

        public AuditHead? Read(string node) => inner.Read(node);

        public Task<IReadOnlyList<AuditHead>> ReadAllAsync(CancellationToken cancellationToken) => inner.ReadAllAsync(cancellationToken);

        public Task<AuditHead?> PublishAsync(AuditHead head, bool replace, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _publications);
            return inner.PublishAsync(head, replace, cancellationToken);
        }
    }
}
