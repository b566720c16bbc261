using System.Diagnostics;
using System.Security.Cryptography;
using Npgsql;

namespace Broker.Testing;

/// <summary>
/// A real PostgreSQL server on a free loopback port, in a temp folder of its own (initdb at
/// start, SCRAM passwords for TCP logins, fsync off: tests prove behaviour, not durability).
/// PostgreSQL refuses to run as root, so as root the server runs as the <c>postgres</c> system
/// user (setpriv execs, so the process started is the server itself). Stoppable and restartable
/// on the same port and data; ends only the process it started, by PID.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    public const string AdminUser = "broker_admin";

    private readonly string _bin;
    private Process? _process;

    private PostgresServer(string bin, string directory, int port, string adminPassword)
    {
        _bin = bin;
        Directory = directory;
        Port = port;
        AdminPassword = adminPassword;
        AdminPasswordFile = Path.Combine(directory, "admin.pw");
        File.WriteAllText(AdminPasswordFile, adminPassword + "\n");
    }

    public string Directory { get; }

    public int Port { get; }

    public string AdminPassword { get; }

    /// <summary>The admin password in a file, as policy references it (<c>admin_password_file</c>).</summary>
    public string AdminPasswordFile { get; }

    public string DataDirectory => Path.Combine(Directory, "data");

    /// <summary>A connection string for policy: no password (that comes from <see cref="AdminPasswordFile"/>).</summary>
    public string ConnectionFor(string database) => $"Host=127.0.0.1;Port={Port};Database={database};Username={AdminUser}";

    /// <summary>A ready-to-use admin connection string, for test set-up and assertions.</summary>
    public string AdminConnection(string database = "postgres") => ConnectionFor(database) + $";Password={AdminPassword};Pooling=false";

    public static async Task<PostgresServer> StartAsync()
    {
        var bin = FindBinariesOrThrow();
        var directory = System.IO.Directory.CreateTempSubdirectory("broker-pg-").FullName;
        var server = new PostgresServer(bin, directory, RedisServer.FreePort(), Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)));
        await server.InitAsync();
        await server.StartProcessAsync();
        return server;
    }

    /// <summary>A fast shutdown: sessions end, the port closes. <see cref="RestartAsync"/> brings it back with its data.</summary>
    public async Task StopAsync()
    {
        if (_process is null)
        {
            return;
        }

        // SIGINT is PostgreSQL's "fast" shutdown.
        _ = Process.Start("kill", ["-INT", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await _process.WaitForExitAsync(timeout.Token);
        _process.Dispose();
        _process = null;
    }

    public Task RestartAsync() => StartProcessAsync();

    public async Task<NpgsqlConnection> OpenAdminAsync(string database = "postgres")
    {
        var connection = new NpgsqlConnection(AdminConnection(database));
        await connection.OpenAsync();
        return connection;
    }

    /// <summary>Runs statements as the admin.</summary>
    public async Task ExecuteAsync(string database, string sql)
    {
        await using var connection = await OpenAdminAsync(database);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    public async Task<T?> ScalarAsync<T>(string database, string sql)
    {
        await using var connection = await OpenAdminAsync(database);
        await using var command = new NpgsqlCommand(sql, connection);
        var value = await command.ExecuteScalarAsync();
        return value is null or DBNull ? default : (T)value;
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is not null && !_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process?.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Best effort: a temp folder left behind is harmless.
        }
    }

    private async Task InitAsync()
    {
        var pwfile = Path.Combine(Directory, "initdb.pw");
        await File.WriteAllTextAsync(pwfile, AdminPassword + "\n");
        if (Environment.IsPrivilegedProcess)
        {
            await RunAsync("chown", ["-R", "postgres:postgres", Directory]);
        }

        await RunAsync(Path.Combine(_bin, "initdb"), ["-D", DataDirectory, "-U", AdminUser, "--pwfile", pwfile, "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--no-sync"], asPostgres: true);
        File.Delete(pwfile);
    }

    private async Task StartProcessAsync()
    {
        var info = Command(Path.Combine(_bin, "postgres"), [
            "-D", DataDirectory,
            "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "unix_socket_directories=" + Directory,
            "-c", "fsync=off",
            "-c", "password_encryption=scram-sha-256",
            "-c", "logging_collector=off",
        ], asPostgres: true);
        info.RedirectStandardError = true;
        info.RedirectStandardOutput = true;
        _process = Process.Start(info) ?? throw new InvalidOperationException("postgres did not start.");
        var log = new System.Text.StringBuilder();
        _process.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        _process.OutputDataReceived += (_, _) => { };
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                lock (log)
                {
                    throw new InvalidOperationException($"postgres exited with {_process.ExitCode}: {log}");
                }
            }

            try
            {
                await using var connection = await OpenAdminAsync();
                return;
            }
            catch (NpgsqlException)
            {
                // Not accepting connections yet.
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"postgres did not accept connections on port {Port} within 30 s.");
    }

    private static ProcessStartInfo Command(string file, IEnumerable<string> args, bool asPostgres)
    {
        var info = new ProcessStartInfo(asPostgres && Environment.IsPrivilegedProcess ? "setpriv" : file) { UseShellExecute = false };
        if (asPostgres && Environment.IsPrivilegedProcess)
        {
            foreach (var a in new[] { "--reuid=postgres", "--regid=postgres", "--init-groups", "--", file })
            {
                info.ArgumentList.Add(a);
            }
        }

        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        return info;
    }

    private static async Task RunAsync(string file, IEnumerable<string> args, bool asPostgres = false)
    {
        var info = Command(file, args, asPostgres);
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"{file} did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{Path.GetFileName(file)} failed ({process.ExitCode}): {await stderr}{await stdout}");
        }
    }

    /// <summary>The newest installed server's bin folder, or an exception saying how to install one (tests fail, never skip, without it).</summary>
    public static string FindBinariesOrThrow()
    {
        var root = "/usr/lib/postgresql";
        var candidates = System.IO.Directory.Exists(root)
            ? System.IO.Directory.GetDirectories(root)
                .Select(d => (Dir: Path.Combine(d, "bin"), Version: int.TryParse(Path.GetFileName(d), out var v) ? v : 0))
                .Where(c => File.Exists(Path.Combine(c.Dir, "postgres")) && File.Exists(Path.Combine(c.Dir, "initdb")))
                .OrderByDescending(c => c.Version)
                .Select(c => c.Dir)
                .ToList()
            : [];
        return candidates.FirstOrDefault()
            ?? throw new InvalidOperationException(
                "PostgreSQL server binaries were not found under /usr/lib/postgresql/*/bin. The secrets tests need a real server: " +
                "install postgresql with `apt-get install -y postgresql` (./test.sh does this for you when run as root).");
    }
}
