using Broker.Core.Diagnostics;
using Broker.Core.Revocation;
using Broker.Revocation;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Broker.Core.Tests.Revocation;

/// <summary>
/// Phase moves share the revocation log with revocations: the feed hands each to its listeners
/// once, applies none to the index, and reads on past a page made only of moves.
/// </summary>
public sealed class RevocationFeedMovesTests : IAsyncLifetime
{
    private readonly InMemoryRevocationStore _store = new();
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly List<PhaseMove> _moved = [];
    private RevocationFeed _feed = null!;

    public Task InitializeAsync()
    {
        _feed = new RevocationFeed(_store, Options.Create(new RevocationOptions()), TimeProvider.System, NullLogger<RevocationFeed>.Instance, new BrokerMetrics(_services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>()));
        _feed.Moved += moves => _moved.AddRange(moves);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        _feed.Dispose();
        await _services.DisposeAsync();
    }

    [Fact]
    public async Task Each_move_reaches_listeners_once_and_revokes_nothing()
    {
        var now = DateTimeOffset.UtcNow;
        await _store.AnnounceAsync(new PhaseMove("t", "planning", now), default);
        await _store.AnnounceAsync(new PhaseMove("u", "execution", now), default);
        Assert.True(await _feed.SyncAsync(default));
        Assert.True(await _feed.SyncAsync(default));

        Assert.Equal([new PhaseMove("t", "planning", now), new PhaseMove("u", "execution", now)], _moved);
        Assert.Empty(_feed.LiveEntries());
        Assert.False(_feed.Index.IsTaskOrPhaseRevoked("t", "planning", DateTimeOffset.MinValue));
        Assert.Equal("2", _feed.Cursor);
    }

    [Fact]
    public async Task A_revocation_after_a_full_page_of_moves_is_applied_in_the_same_read()
    {
        var now = DateTimeOffset.UtcNow;
        for (var i = 0; i < 1000; i++)
        {
            await _store.AnnounceAsync(new PhaseMove($"t{i}", "planning", now), default);
        }

        await _store.AppendAsync([new RevocationDraft(RevocationSelector.ForTask("ended"), "test", "ended", now, now + TimeSpan.FromHours(1))], default);
        Assert.True(await _feed.SyncAsync(default));

        Assert.Equal(1000, _moved.Count);
        Assert.True(_feed.Index.IsTaskOrPhaseRevoked("ended", "planning", DateTimeOffset.MinValue));
    }
}
