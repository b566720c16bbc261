using Broker.Core.Secrets;
using Npgsql;

namespace Broker.Server.Tests.Secrets;

/// <summary>What an agent does with a handed-out login: connect, read, write, and notice when it is cut off.</summary>
internal static class DatabaseSession
{
    public static string ConnectionString(DownstreamLogin login) =>
        $"Host={login.Host};Port={login.Port};Database={login.Database};Username={login.Username};Password={login.Password};Pooling=false;Timeout=5";

    public static async Task<NpgsqlConnection> OpenAsync(DownstreamLogin login)
    {
        var connection = new NpgsqlConnection(ConnectionString(login));
        await connection.OpenAsync();
        return connection;
    }

    /// <summary>Null when the login is accepted; otherwise the server's SQLSTATE (e.g. 28P01 for a refused password).</summary>
    public static async Task<string?> TryLoginAsync(DownstreamLogin login)
    {
        try
        {
            await using var connection = await OpenAsync(login);
            return null;
        }
        catch (PostgresException ex)
        {
            return ex.SqlState;
        }
    }

    public static async Task<long> CountOrdersAsync(NpgsqlConnection connection)
    {
        await using var command = new NpgsqlCommand("SELECT count(*) FROM orders", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Null when the insert succeeded; otherwise the SQLSTATE (42501 for insufficient privilege).</summary>
    public static async Task<string?> TryInsertAsync(NpgsqlConnection connection)
    {
        try
        {
            await using var command = new NpgsqlCommand("INSERT INTO orders (item) VALUES ('gadget')", connection);
            await command.ExecuteNonQueryAsync();
            return null;
        }
        catch (PostgresException ex)
        {
            return ex.SqlState;
        }
    }

    /// <summary>True while the session still answers a query; false once the server ended it.</summary>
    public static async Task<bool> IsAliveAsync(NpgsqlConnection connection)
    {
        try
        {
            await using var command = new NpgsqlCommand("SELECT 1", connection);
            await command.ExecuteScalarAsync();
            return true;
        }
        catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>Polls until <paramref name="condition"/> holds or the deadline passes (never a fixed sleep).</summary>
    public static async Task<bool> EventuallyAsync(Func<Task<bool>> condition, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (DateTime.UtcNow < deadline)
        {
            if (await condition())
            {
                return true;
            }

            await Task.Delay(20);
        }

        return await condition();
    }
}
