using System.Globalization;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Broker.Core.Policy;
using Broker.Core.Secrets;
using Npgsql;

namespace Broker.Secrets.Postgres;

/// <summary>
/// PostgreSQL logins per lease: a fresh role with a random password, <c>VALID UNTIL</c> the lease's
/// expiry, a connection limit and membership in exactly the role policy names. Revoking refuses new
/// logins, terminates live sessions (waiting for them to end), hands anything the login created to
/// its role and drops the login. The password reaches the server only as a SCRAM-SHA-256 verifier,
/// so it is in no server log or catalog either.
/// </summary>
public sealed partial class PostgresEngine : ISecretEngine
{
    /// <summary>How long revoking waits for each terminated session to exit.</summary>
    private const int TerminateWaitMs = 5000;

    /// <summary>
    /// How often revoking looks whether the terminated sessions are gone. The wait built into
    /// <c>pg_terminate_backend(pid, timeout)</c> looks every 100 ms, so a session that exits in a
    /// millisecond still held the revocation for 100 ms.
    /// </summary>
    private const int TerminatePollMs = 2;

    private const int ScramIterations = 4096;

    private readonly NpgsqlDataSource _dataSource;
    private readonly SecretEnginePolicy _policy;
    private readonly string _host;
    private readonly int _port;
    private readonly string _database;

    public PostgresEngine(SecretEnginePolicy policy)
    {
        _policy = policy;
        var builder = new NpgsqlConnectionStringBuilder(policy.Connection)
        {
            // Fail fast: a down server is an UNAVAILABLE answer, not a hung request.
            Timeout = 5,
            CommandTimeout = 15,
            ApplicationName = "broker-secrets",
        };
        _host = builder.Host ?? "localhost";
        _port = builder.Port;
        _database = builder.Database ?? "";
        var source = new NpgsqlDataSourceBuilder(builder.ConnectionString);

        // Read on every new physical connection, so a rotated admin password takes effect.
        source.UsePasswordProvider(_ => AdminPassword(), (_, _) => ValueTask.FromResult(AdminPassword()));
        _dataSource = source.Build();
    }

    public string Name => _policy.Name;

    public async Task<DownstreamLogin> CreateAsync(SecretLease lease, CancellationToken cancellationToken)
    {
        CheckIdentifier(lease.Login);
        CheckIdentifier(lease.Role);
        var password = Base64UrlPassword();
        var sql = string.Create(CultureInfo.InvariantCulture, $"""
            CREATE ROLE "{lease.Login}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT
              CONNECTION LIMIT {_policy.ConnectionLimit}
              PASSWORD '{ScramVerifier(password)}'
              VALID UNTIL '{lease.ExpiresAt.UtcDateTime:yyyy-MM-dd HH:mm:ss}+00'
              IN ROLE "{lease.Role}"
            """);
        await RunAsync(sql, cancellationToken);
        return new DownstreamLogin(_host, _port, _database, lease.Login, password);
    }

    public async Task RevokeAsync(SecretLease lease, CancellationToken cancellationToken)
    {
        CheckIdentifier(lease.Login);
        CheckIdentifier(lease.Role);
        try
        {
            await RunAsync($"ALTER ROLE \"{lease.Login}\" NOLOGIN", cancellationToken);
        }
        catch (SecretEngineException ex) when (ex.RoleMissing)
        {
            return; // never created, or already dropped
        }


        // pg_stat_activity is a snapshot taken once per transaction: the loop clears it each pass.
        // Two round trips: NOLOGIN must commit before the sessions die, or the agent could log in
        // again in the moment between a session's end and the drop's commit. Objects the login
        // owns pass to its role; if that is not permitted the drop fails and the lease is retried.
        var sql = string.Create(CultureInfo.InvariantCulture, $"""
            DO $broker$
            BEGIN
              IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{lease.Login}') THEN RETURN; END IF;
              PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{lease.Login}' AND pid <> pg_backend_pid();
              FOR attempt IN 1..{TerminateWaitMs / TerminatePollMs} LOOP
                PERFORM pg_stat_clear_snapshot();
                EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE usename = '{lease.Login}' AND pid <> pg_backend_pid());
                PERFORM pg_sleep({TerminatePollMs / 1000.0});
              END LOOP;
              BEGIN
                REASSIGN OWNED BY "{lease.Login}" TO "{lease.Role}";
                DROP OWNED BY "{lease.Login}";
              EXCEPTION WHEN OTHERS THEN NULL;
              END;
              DROP ROLE "{lease.Login}";
            END
            $broker$
            """);
        await RunAsync(sql, cancellationToken);
    }

    public async Task<string?> CheckAsync(IReadOnlyCollection<string> roles, CancellationToken cancellationToken)
    {
        try
        {
            await using var command = _dataSource.CreateCommand("SELECT rolname FROM pg_roles WHERE rolname = ANY($1)");
            command.Parameters.Add(new NpgsqlParameter { Value = roles.ToArray() });
            var found = new HashSet<string>(StringComparer.Ordinal);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                found.Add(reader.GetString(0));
            }

            var missing = roles.Where(r => !found.Contains(r)).Order(StringComparer.Ordinal).ToArray();
            return missing.Length == 0 ? null : $"role(s) {string.Join(", ", missing)} granted by policy do not exist";
        }
        catch (Exception ex) when (ex is NpgsqlException or SecretEngineException)
        {
            return Describe(ex);
        }
    }

    public ValueTask DisposeAsync() => _dataSource.DisposeAsync();

    private async Task RunAsync(string sql, CancellationToken cancellationToken)
    {
        NpgsqlConnection connection;
        try
        {
            connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        }
        catch (NpgsqlException ex)
        {
            throw new SecretEngineException(Name, Describe(ex), nothingDone: true);
        }

        // Never ex.Message of a statement error: describe by state and server text only.
        await using (connection)
        {
            try
            {
                await using var command = new NpgsqlCommand(sql, connection);
                await command.ExecuteNonQueryAsync(cancellationToken);
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UndefinedObject)
            {
                throw new SecretEngineException(Name, $"role does not exist on {Name}", roleMissing: true, nothingDone: true);
            }
            catch (PostgresException ex)
            {
                // The server refused the statement, which is atomic: nothing changed.
                throw new SecretEngineException(Name, Describe(ex), nothingDone: true);
            }
            catch (NpgsqlException ex)
            {
                // The connection failed mid-statement: whether it ran is unknown.
                throw new SecretEngineException(Name, Describe(ex));
            }
        }
    }

    // What an operator needs to act on, without the statement (which holds the verifier).
    private string Describe(Exception ex) => ex switch
    {
        SecretEngineException engine => engine.Message,
        PostgresException { SqlState: PostgresErrorCodes.InvalidPassword or PostgresErrorCodes.InvalidAuthorizationSpecification } =>
            $"the broker's admin login to {_host}:{_port} was refused",
        PostgresException pg => $"PostgreSQL refused ({pg.SqlState}): {pg.MessageText}",
        NpgsqlException { InnerException: SocketException socket } => $"cannot connect to {_host}:{_port} ({socket.SocketErrorCode})",
        NpgsqlException { InnerException: TimeoutException } => $"no answer from {_host}:{_port} in time",
        NpgsqlException { InnerException: IOException } => $"the connection to {_host}:{_port} failed",
        _ => $"cannot use {_host}:{_port} ({ex.GetType().Name})",
    };

    private string AdminPassword()
    {
        if (_policy.AdminPasswordFile is { } file)
        {
            try
            {
                return File.ReadAllText(file).TrimEnd('\r', '\n');
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new SecretEngineException(Name, $"the admin password file of {Name} cannot be read ({ex.GetType().Name})");
            }
        }

        return Environment.GetEnvironmentVariable(_policy.AdminPasswordEnv ?? "")
            ?? throw new SecretEngineException(Name, $"environment variable {_policy.AdminPasswordEnv} (the admin password of {Name}) is not set");
    }

    private static void CheckIdentifier(string name)
    {
        // Policy and the lease id generator allow only these; anything else never reaches SQL.
        if (!IdentifierRegex().IsMatch(name))
        {
            throw new ArgumentException("Not a role name this engine issues or grants.", nameof(name));
        }
    }

    private static string Base64UrlPassword() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>The <c>SCRAM-SHA-256$iter:salt$StoredKey:ServerKey</c> verifier PostgreSQL stores (RFC 5802, RFC 7677).</summary>
    internal static string ScramVerifier(string password)
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        var salted = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, ScramIterations, HashAlgorithmName.SHA256, 32);
        var clientKey = HMACSHA256.HashData(salted, "Client Key"u8);
        var storedKey = SHA256.HashData(clientKey);
        var serverKey = HMACSHA256.HashData(salted, "Server Key"u8);
        return $"SCRAM-SHA-256${ScramIterations}:{Convert.ToBase64String(salt)}${Convert.ToBase64String(storedKey)}:{Convert.ToBase64String(serverKey)}";
    }

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,62}$")]
    private static partial Regex IdentifierRegex();
}

/// <summary>Builds <see cref="PostgresEngine"/>s for <c>type: postgres</c>.</summary>
public sealed class PostgresEngineFactory : ISecretEngineFactory
{
    public string Type => "postgres";

    public ISecretEngine Create(SecretEnginePolicy engine) => new PostgresEngine(engine);
}
