using Broker.Testing;
using StackExchange.Redis;

namespace Broker.Server.Tests.Infrastructure;

/// <summary>One real redis-server per test collection; each test uses its own key prefix.</summary>
public sealed class RedisFixture : IAsyncLifetime
{
    private RedisServer? _server;
    private ConnectionMultiplexer? _connection;

    public RedisServer Server => _server ?? throw new InvalidOperationException("Redis is not started.");

    public ConnectionMultiplexer Connection => _connection ?? throw new InvalidOperationException("Redis is not started.");

    public async Task InitializeAsync()
    {
        _server = await RedisServer.StartAsync();
        _connection = await ConnectionMultiplexer.ConnectAsync(_server.Configuration);
    }

    public async Task DisposeAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
        }

        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    public static string NewPrefix() => $"t{Guid.NewGuid():N}:";
}

[CollectionDefinition(Name)]
public sealed class RedisCollection : ICollectionFixture<RedisFixture>
{
    public const string Name = "redis";
}
