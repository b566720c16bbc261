using Broker.Testing;

namespace Broker.Server.Tests.Infrastructure;

/// <summary>
/// One real PostgreSQL per test collection with an <c>orders</c> database: a table, a read role
/// (SELECT) and a write role (SELECT, INSERT), as an IAM team would prepare them for Broker.
/// </summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    public const string Database = "orders";
    public const string Reader = "orders_reader";
    public const string Writer = "orders_writer";

    private PostgresServer? _server;

    public PostgresServer Server => _server ?? throw new InvalidOperationException("PostgreSQL is not started.");

    public async Task InitializeAsync()
    {
        _server = await PostgresServer.StartAsync();
        await _server.ExecuteAsync("postgres", $"CREATE DATABASE {Database}");
        await _server.ExecuteAsync(Database, $"""
            CREATE ROLE {Reader} NOLOGIN;
            CREATE ROLE {Writer} NOLOGIN;
            CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL);
            INSERT INTO orders (item) VALUES ('widget');
            GRANT SELECT ON orders TO {Reader};
            GRANT SELECT, INSERT ON orders TO {Writer};
            GRANT USAGE ON SEQUENCE orders_id_seq TO {Writer};
            """);
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    /// <summary>Logins this broker created (<c>brk_*</c>) that still exist.</summary>
    public async Task<long> BrokerLoginsAsync() =>
        await Server.ScalarAsync<long>("postgres", "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'brk\\_%'");
}

[CollectionDefinition(Name)]
public sealed class SecretsCollection : ICollectionFixture<RedisFixture>, ICollectionFixture<PostgresFixture>
{
    public const string Name = "secrets";
}
