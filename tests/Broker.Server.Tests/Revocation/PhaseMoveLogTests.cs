using System.Text.Json;
using Broker.Core.Revocation;
using Broker.Redis;
using Broker.Server.Tests.Infrastructure;
using Broker.Revocation;

namespace Broker.Server.Tests.Revocation;

/// <summary>
/// A phase move on the Redis revocation log: read back as a move, never as a revocation, and
/// stored so that a node of an earlier release reads it as an entry that expired long ago.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class PhaseMoveLogTests(RedisFixture redis)
{
    [Fact]
    public async Task A_move_reads_back_as_a_move_between_revocations_and_the_cursor_passes_it()
    {
        var keys = new RedisKeys(RedisFixture.NewPrefix());
        await redis.Connection.GetDatabase().StringSetAsync(keys.RevocationEpoch, "e1");
        using var durable = new RedisDurableWrites(redis.Connection, new RedisRevocationOptions());
        using var store = new RedisRevocationStore(redis.Connection, keys, durable);
        var at = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var ended = new RevocationDraft(RevocationSelector.ForTask("ended"), "test", "ended", at, at + TimeSpan.FromHours(1));

        await store.AppendAsync([ended], default);
        await store.AnnounceAsync(new PhaseMove("kept", "planning", at), default);
        var page = await store.ReadAfterAsync(null, 10, default);

        Assert.Equal(2, page.Rows);
        Assert.Equal(RevocationSelector.ForTask("ended"), Assert.Single(page.Entries).Selector);
        Assert.Equal(new PhaseMove("kept", "planning", at), Assert.Single(page.Moves));
        var after = await store.ReadAfterAsync(page.LastId, 10, default);
        Assert.Equal(0, after.Rows);
        Assert.Null(after.LastId);
    }

    [Fact]
    public async Task A_move_is_stored_as_a_task_phase_entry_that_expired_in_1970()
    {
        var keys = new RedisKeys(RedisFixture.NewPrefix());
        await redis.Connection.GetDatabase().StringSetAsync(keys.RevocationEpoch, "e1");
        using var durable = new RedisDurableWrites(redis.Connection, new RedisRevocationOptions());
        using var store = new RedisRevocationStore(redis.Connection, keys, durable);

        await store.AnnounceAsync(new PhaseMove("kept", "planning", DateTimeOffset.UtcNow), default);

        var row = Assert.Single(await redis.Connection.GetDatabase().StreamRangeAsync(keys.RevocationStream));
        using var stored = JsonDocument.Parse(row["e"].ToString());
        Assert.Equal("TaskPhase", stored.RootElement.GetProperty("Kind").GetString());
        Assert.Equal("kept", stored.RootElement.GetProperty("Value").GetString());
        Assert.Equal(0, stored.RootElement.GetProperty("Exp").GetInt64());
        Assert.True(stored.RootElement.GetProperty("Move").GetBoolean());
    }

    /// <summary>Unlike a revocation, an unconfirmed move is not in force anywhere yet: the mover must not write the new phase.</summary>
    [Fact]
    public async Task A_move_the_replicas_do_not_confirm_throws_so_the_task_does_not_move()
    {
        var keys = new RedisKeys(RedisFixture.NewPrefix());
        await redis.Connection.GetDatabase().StringSetAsync(keys.RevocationEpoch, "e1");
        using var durable = new RedisDurableWrites(redis.Connection, new RedisRevocationOptions { MinReplicas = 1, ReplicaTimeout = TimeSpan.FromMilliseconds(50) });
        using var store = new RedisRevocationStore(redis.Connection, keys, durable);

        await Assert.ThrowsAsync<ReplicationUnconfirmedException>(() => store.AnnounceAsync(new PhaseMove("kept", "planning", DateTimeOffset.UtcNow), default));
    }

    [Fact]
    public async Task A_move_without_an_epoch_is_refused()
    {
        var keys = new RedisKeys(RedisFixture.NewPrefix());
        using var durable = new RedisDurableWrites(redis.Connection, new RedisRevocationOptions());
        using var store = new RedisRevocationStore(redis.Connection, keys, durable);

        await Assert.ThrowsAsync<RevocationStateLostException>(() => store.AnnounceAsync(new PhaseMove("kept", "planning", DateTimeOffset.UtcNow), default));
        Assert.Equal(0, await redis.Connection.GetDatabase().StreamLengthAsync(keys.RevocationStream));
    }
}
