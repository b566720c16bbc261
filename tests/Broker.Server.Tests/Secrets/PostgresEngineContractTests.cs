using Broker.Core.Policy;
using Broker.Core.Secrets;
using Broker.Secrets.Postgres;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Npgsql;

namespace Broker.Server.Tests.Secrets;

[Collection(SecretsCollection.Name)]
public sealed class PostgresEngineContractTests(PostgresFixture postgres) : SecretEngineContract, IAsyncLifetime
{
    private PostgresEngine? _engine;

    protected override ISecretEngine Engine => _engine!;

    protected override string ReadRole => PostgresFixture.Reader;

    protected override string WriteRole => PostgresFixture.Writer;

    public Task InitializeAsync()
    {
        _engine = new PostgresEngine(new SecretEnginePolicy("contract", "postgres", postgres.Server.ConnectionFor(PostgresFixture.Database), postgres.Server.AdminPasswordFile, null, 2));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _engine!.DisposeAsync();

    protected override ISecretEngine CreateUnreachableEngine() =>
        new PostgresEngine(new SecretEnginePolicy("down", "postgres", $"Host=127.0.0.1;Port={RedisServer.FreePort()};Database=orders;Username=x", postgres.Server.AdminPasswordFile, null, 2));

    protected override async Task<bool> LoginAcceptedAsync(DownstreamLogin login) => await DatabaseSession.TryLoginAsync(login) is null;

    protected override async Task<bool> CanReadAsync(DownstreamLogin login)
    {
        await using var connection = await DatabaseSession.OpenAsync(login);
        return await DatabaseSession.CountOrdersAsync(connection) >= 1;
    }

    protected override async Task<bool> CanWriteAsync(DownstreamLogin login)
    {
        await using var connection = await DatabaseSession.OpenAsync(login);
        var refused = await DatabaseSession.TryInsertAsync(connection);
        Assert.True(refused is null or PostgresErrorCodes.InsufficientPrivilege, $"unexpected SQLSTATE {refused}");
        return refused is null;
    }

    protected override async Task<IAsyncDisposable> OpenSessionAsync(DownstreamLogin login) => await DatabaseSession.OpenAsync(login);

    protected override Task<bool> IsAliveAsync(IAsyncDisposable session) => DatabaseSession.IsAliveAsync((NpgsqlConnection)session);

    protected override async Task<bool> LoginExistsAsync(string login) =>
        await postgres.Server.ScalarAsync<long>("postgres", $"SELECT count(*) FROM pg_roles WHERE rolname = '{login}'") == 1;

    [Fact]
    public async Task The_server_stores_only_a_scram_verifier_and_the_login_holds_one_role_and_a_connection_limit()
    {
        var lease = Lease(PostgresFixture.Reader, TimeSpan.FromMinutes(5));
        var login = await Engine.CreateAsync(lease, default);

        var stored = await postgres.Server.ScalarAsync<string>("postgres", $"SELECT rolpassword FROM pg_authid WHERE rolname = '{lease.Login}'");
        Assert.StartsWith("SCRAM-SHA-256$", stored);
        Assert.DoesNotContain(login.Password, stored!, StringComparison.Ordinal);
        var roles = await postgres.Server.ScalarAsync<string>("postgres", $"SELECT string_agg(g.rolname, ',') FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = '{lease.Login}'");
        Assert.Equal(PostgresFixture.Reader, roles);
        Assert.Equal(2, await postgres.Server.ScalarAsync<int>("postgres", $"SELECT rolconnlimit FROM pg_roles WHERE rolname = '{lease.Login}'"));
        var validUntil = await postgres.Server.ScalarAsync<DateTime>("postgres", $"SELECT rolvaliduntil FROM pg_roles WHERE rolname = '{lease.Login}'");
        Assert.Equal(lease.ExpiresAt.UtcDateTime, validUntil.ToUniversalTime());
    }
}
