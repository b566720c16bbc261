using Broker.Redis;
using Broker.Server.Tests.Infrastructure;
using StackExchange.Redis;

namespace Broker.Server.Tests.State;

[Collection(RedisCollection.Name)]
public sealed class RedisDurabilityCheckTests(RedisFixture redis)
{
    [Fact]
    public async Task Aof_with_fsync_always_passes_and_weaker_settings_are_named()
    {
        await using var admin = await ConnectionMultiplexer.ConnectAsync(redis.Server.Configuration + ",allowAdmin=true");
        var server = admin.GetServer(admin.GetEndPoints()[0]);

        var good = await RedisDurabilityCheck.ProblemsAsync(admin, minReplicas: 0);
        await server.ConfigSetAsync("appendfsync", "everysec");
        IReadOnlyList<string> weak;
        try
        {
            weak = await RedisDurabilityCheck.ProblemsAsync(admin, minReplicas: 0);
        }
        finally
        {
            await server.ConfigSetAsync("appendfsync", "always");
        }

        Assert.Empty(good);
        Assert.Contains(weak, p => p.StartsWith("BRK2002", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_admin_rights_the_check_says_it_could_not_read_the_configuration()
    {
        var problems = await RedisDurabilityCheck.ProblemsAsync(redis.Connection, minReplicas: 0);

        Assert.Contains(problems, p => p.StartsWith("BRK2000", StringComparison.Ordinal));
    }
}
