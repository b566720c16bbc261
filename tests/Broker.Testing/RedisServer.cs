using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;

namespace Broker.Testing;

/// <summary>
/// A real <c>redis-server</c> on a free loopback port, with its own data folder, AOF on and
/// <c>appendfsync always</c> (the production durability setting). Stoppable and restartable on
/// the same port and data, so tests can prove what survives a restart. Ends only the process it
/// started, by PID.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private Process? _process;

    private RedisServer(string executable, int port, string dataDirectory)
    {
        Executable = executable;
        Port = port;
        DataDirectory = dataDirectory;
    }

    public string Executable { get; }

    public int Port { get; }

    public string DataDirectory { get; }

    /// <summary>A StackExchange.Redis configuration string for this server.</summary>
    public string Configuration => $"127.0.0.1:{Port},abortConnect=false,connectTimeout=2000,syncTimeout=2000";

    public static async Task<RedisServer> StartAsync()
    {
        var executable = FindExecutableOrThrow();
        var dataDirectory = Directory.CreateTempSubdirectory("broker-redis-").FullName;
        // A port checked free can still be taken before redis-server binds it (another test's
        // child process); such a start is retried on a new port, never reported as a failure.
        for (var attempt = 1; ; attempt++)
        {
            var server = new RedisServer(executable, FreePort(), dataDirectory);
            try
            {
                await server.StartProcessAsync();
                return server;
            }
            catch (PortInUseException) when (attempt < 5)
            {
                server._process?.Dispose();
            }
        }
    }

    /// <summary>Stops the server the way a crash would not: SHUTDOWN lets AOF finish. Use <see cref="Kill"/> for a crash.</summary>
    public async Task StopAsync()
    {
        if (_process is null)
        {
            return;
        }

        try
        {
            await using var connection = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{Port},allowAdmin=true,abortConnect=false");
            await connection.GetServer($"127.0.0.1:{Port}").ExecuteAsync("SHUTDOWN");
        }
        catch (RedisException)
        {
            // SHUTDOWN closes the connection before it answers.
        }

        await WaitForExitAsync();
    }

    /// <summary>SIGKILL: what a crashed or pulled-out Redis looks like to the broker.</summary>
    public async Task KillAsync()
    {
        if (_process is null)
        {
            return;
        }

        _process.Kill();
        await WaitForExitAsync();
    }

    public Task RestartAsync() => StartProcessAsync();

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
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a temp folder left behind is harmless.
        }
    }

    private async Task StartProcessAsync()
    {
        var info = new ProcessStartInfo(Executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
                 {
                     "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--bind", "127.0.0.1",
                     "--dir", DataDirectory,
                     "--save", "",
                     "--appendonly", "yes",
                     "--appendfsync", "always",
                     "--daemonize", "no",
                     "--protected-mode", "yes",
                     "--logfile", Path.Combine(DataDirectory, "redis.log"),
                 })
        {
            info.ArgumentList.Add(arg);
        }

        _process = Process.Start(info) ?? throw new InvalidOperationException("redis-server did not start.");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                var log = Path.Combine(DataDirectory, "redis.log");
                var text = File.Exists(log) ? await File.ReadAllTextAsync(log) : "no log";
                File.Delete(log);
                if (text.Contains("Address already in use", StringComparison.Ordinal))
                {
                    throw new PortInUseException($"redis-server could not bind port {Port}: {text}");
                }

                throw new InvalidOperationException($"redis-server exited with {_process.ExitCode}: {text}");
            }

            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, Port);
                await using var stream = client.GetStream();
                await stream.WriteAsync("PING\r\n"u8.ToArray());
                var buffer = new byte[16];
                var read = await stream.ReadAsync(buffer);
                if (read > 0 && buffer[0] == (byte)'+')
                {
                    return;
                }
            }
            catch (SocketException)
            {
                // Not listening yet.
            }

            await Task.Delay(25);
        }

        throw new TimeoutException($"redis-server did not answer PING on port {Port} within 10 s.");
    }

    private async Task WaitForExitAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _process!.WaitForExitAsync(timeout.Token);
        _process.Dispose();
        _process = null;
    }

    /// <summary>The redis-server binary, or an exception saying how to install it (tests fail, never skip, without it).</summary>
    public static string FindExecutableOrThrow() => FindExecutable()
        ?? throw new InvalidOperationException(
            "redis-server was not found on PATH. The integration tests need a real Redis: install it with " +
            "`apt-get install -y redis-server` (./test.sh does this for you when run as root).");

    private static string? FindExecutable()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/bin").Append("/usr/sbin").Append("/usr/local/bin"))
        {
            var candidate = Path.Combine(dir, "redis-server");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>A free loopback port: see <see cref="LoopbackPorts"/>.</summary>
    public static int FreePort() => LoopbackPorts.Next();
}

/// <summary>The port a child server was given was bound by someone else first.</summary>
public sealed class PortInUseException(string message) : Exception(message);
