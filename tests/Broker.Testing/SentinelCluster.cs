using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Broker.Testing;

/// <summary>
/// A Redis primary, one or more replicas and three Sentinels (quorum 2) as real processes on free
/// loopback ports, each with its own folder and writable configuration file (Sentinel rewrites
/// its file; a reconfigured data node does too). Data nodes run AOF with <c>appendfsync always</c>
/// and <c>min-replicas-to-write 1</c>, as deploy/compose does. Failure detection is fast
/// (<c>down-after-milliseconds</c> 1000) so a failover completes in seconds. Ends only the
/// processes it started, by PID.
/// </summary>
public sealed class SentinelCluster : IAsyncDisposable
{
    public const string ServiceName = "broker";

    private readonly string _work;

    private SentinelCluster(string work, RedisProcess primary, IReadOnlyList<RedisProcess> replicas, IReadOnlyList<RedisProcess> sentinels)
    {
        _work = work;
        InitialPrimary = primary;
        InitialReplicas = replicas;
        Sentinels = sentinels;
    }

    /// <summary>The data node that was primary when the cluster started.</summary>
    public RedisProcess InitialPrimary { get; }

    /// <summary>The first data node that was a replica when the cluster started.</summary>
    public RedisProcess InitialReplica => InitialReplicas[0];

    /// <summary>The data nodes that were replicas when the cluster started, in start order.</summary>
    public IReadOnlyList<RedisProcess> InitialReplicas { get; }

    public IReadOnlyList<RedisProcess> Sentinels { get; }

    public IEnumerable<RedisProcess> DataNodes => [InitialPrimary, .. InitialReplicas];

    /// <summary>A StackExchange.Redis configuration string reaching the service through the Sentinels, as deployments use.</summary>
    public string Configuration =>
        string.Join(',', Sentinels.Select(s => $"127.0.0.1:{s.Port}"))
        + $",serviceName={ServiceName},allowAdmin=true,abortConnect=false,connectTimeout=2000,syncTimeout=2000";

    /// <summary>
    /// Starts the primary, <paramref name="replicas"/> replicas and the Sentinels, and waits until
    /// every replica is in sync and known to every Sentinel. <paramref name="replicaPriorities"/>
    /// sets each replica's <c>replica-priority</c> (lower is promoted first; Redis's default is
    /// 100), so a test can decide which replica Sentinel promotes.
    /// </summary>
    public static async Task<SentinelCluster> StartAsync(int replicas = 1, IReadOnlyList<int>? replicaPriorities = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(replicas, 1);
        if (replicaPriorities is not null && replicaPriorities.Count != replicas)
        {
            throw new ArgumentException($"Give one priority per replica ({replicas}).", nameof(replicaPriorities));
        }

        var executable = RedisServer.FindExecutableOrThrow();
        var work = Directory.CreateTempSubdirectory("broker-sentinel-cluster-").FullName;
        var started = new List<RedisProcess>();
        try
        {
            var primaryPort = RedisServer.FreePort();
            var primary = DataNode(executable, work, "primary", primaryPort, replicaOf: null, priority: null);
            started.Add(primary);
            await primary.StartAsync();

            var replicaNodes = new List<RedisProcess>();
            for (var i = 0; i < replicas; i++)
            {
                var name = replicas == 1 ? "replica" : $"replica-{i + 1}";
                var replica = DataNode(executable, work, name, RedisServer.FreePort(), replicaOf: primaryPort, priority: replicaPriorities?[i]);
                started.Add(replica);
                replicaNodes.Add(replica);
                await replica.StartAsync();
            }

            var sentinels = new List<RedisProcess>();
            for (var i = 1; i <= 3; i++)
            {
                var port = RedisServer.FreePort();
                var dir = Directory.CreateDirectory(Path.Combine(work, $"sentinel-{i}")).FullName;
                var conf = Path.Combine(dir, "sentinel.conf");
                await File.WriteAllTextAsync(conf, $"""
                    port {port}
                    bind 127.0.0.1
                    dir {dir}
                    logfile {Path.Combine(dir, "redis.log")}
                    sentinel monitor {ServiceName} 127.0.0.1 {primaryPort} 2
                    sentinel down-after-milliseconds {ServiceName} 1000
                    sentinel failover-timeout {ServiceName} 3000
                    sentinel parallel-syncs {ServiceName} 1

                    """);
                var sentinel = new RedisProcess(executable, $"sentinel-{i}", port, dir, conf, sentinel: true);
                started.Add(sentinel);
                sentinels.Add(sentinel);
                await sentinel.StartAsync();
            }

            var cluster = new SentinelCluster(work, primary, replicaNodes, sentinels);
            await cluster.WaitUntilAsync(cluster.IsSettledAsync, TimeSpan.FromSeconds(30), "every replica in sync and every Sentinel aware of every replica and of the two other Sentinels");
            return cluster;
        }
        catch
        {
            foreach (var process in started)
            {
                await process.DisposeAsync();
            }

            TryDelete(work);
            throw;
        }
    }

    /// <summary>The primary a majority of Sentinels name for the service, or null while they disagree or do not answer.</summary>
    public async Task<RedisProcess?> AgreedPrimaryAsync()
    {
        var votes = new List<int>();
        foreach (var sentinel in Sentinels)
        {
            if (await sentinel.TryCommandAsync("SENTINEL", "get-master-addr-by-name", ServiceName) is object?[] { Length: 2 } address
                && int.TryParse(address[1] as string, CultureInfo.InvariantCulture, out var port))
            {
                votes.Add(port);
            }
        }

        var majority = votes.GroupBy(p => p).FirstOrDefault(g => g.Count() >= 2)?.Key;
        return DataNodes.FirstOrDefault(n => n.Port == majority);
    }

    /// <summary>
    /// After the primary failed: waits until a majority of Sentinels name another data node and
    /// that node reports itself primary. Returns it.
    /// </summary>
    public async Task<RedisProcess> WaitForPromotionAsync(RedisProcess failed, TimeSpan timeout)
    {
        RedisProcess? promoted = null;
        await WaitUntilAsync(
            async () =>
            {
                promoted = await AgreedPrimaryAsync();
                return promoted is not null && promoted != failed && await promoted.RoleAsync() == "master";
            },
            timeout,
            $"the Sentinels to promote a replica after {failed.Name} failed");
        return promoted!;
    }

    /// <summary>
    /// Waits until every Sentinel, not just a majority, names <paramref name="primary"/> and none
    /// has a failover in progress. Restarting the failed primary before that lets a Sentinel that
    /// has not yet heard of the promotion see it as the live primary and demote the promoted node
    /// back into its replica.
    /// </summary>
    public Task WaitForEverySentinelToFollowAsync(RedisProcess primary, TimeSpan timeout) =>
        WaitUntilAsync(
            async () =>
            {
                foreach (var sentinel in Sentinels)
                {
                    if (await sentinel.TryCommandAsync("SENTINEL", "get-master-addr-by-name", ServiceName) is not object?[] { Length: 2 } address
                        || address[1] as string != primary.Port.ToString(CultureInfo.InvariantCulture)
                        || await sentinel.TryCommandAsync("SENTINEL", "master", ServiceName) is not object?[] fields
                        || Flags(fields).Contains("failover_in_progress", StringComparison.Ordinal))
                    {
                        return false;
                    }
                }

                return true;
            },
            timeout,
            $"every Sentinel to follow {primary.Name} with no failover in progress");

    /// <summary>Waits until <paramref name="replica"/> replicates from <paramref name="primary"/> with the link up and the primary sees it online.</summary>
    public Task WaitForReplicaInSyncAsync(RedisProcess primary, RedisProcess replica, TimeSpan timeout) =>
        WaitInSyncAsync(() => InSyncAsync(primary, replica), primary, replica, timeout, $"{replica.Name} to replicate from {primary.Name}");

    /// <summary>
    /// Waits until <paramref name="a"/> and <paramref name="b"/> are a primary and its in-sync
    /// replica, either way round. On a loaded machine a new primary can miss the Sentinels' pings
    /// long enough for them to fail over once more, back onto the other node; both outcomes keep
    /// every write that waited for a replica.
    /// </summary>
    public Task WaitForPairInSyncAsync(RedisProcess a, RedisProcess b, TimeSpan timeout) =>
        WaitInSyncAsync(async () => await InSyncAsync(a, b) || await InSyncAsync(b, a), a, b, timeout, $"{a.Name} and {b.Name} to be a primary and its replica, either way round");

    private async Task WaitInSyncAsync(Func<Task<bool>> inSync, RedisProcess a, RedisProcess b, TimeSpan timeout, string what)
    {
        try
        {
            await WaitUntilAsync(inSync, timeout, what);
        }
        catch (TimeoutException ex)
        {
            // The log tails rarely say why a replica is not "online"; both sides' INFO does.
            var first = await a.InfoAsync("replication");
            var second = await b.InfoAsync("replication");
            throw new TimeoutException(
                $"{ex.Message}\n{a.Name} INFO replication: {string.Join(", ", first.Select(kv => $"{kv.Key}={kv.Value}"))}" +
                $"\n{b.Name} INFO replication: {string.Join(", ", second.Select(kv => $"{kv.Key}={kv.Value}"))}",
                ex);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in Sentinels.Concat(DataNodes))
        {
            await process.DisposeAsync();
        }

        TryDelete(_work);
    }

    private async Task<bool> IsSettledAsync()
    {
        foreach (var replica in InitialReplicas)
        {
            if (!await InSyncAsync(InitialPrimary, replica))
            {
                return false;
            }
        }

        foreach (var sentinel in Sentinels)
        {
            if (await sentinel.TryCommandAsync("SENTINEL", "replicas", ServiceName) is not object?[] known || known.Length < InitialReplicas.Count
                || await sentinel.TryCommandAsync("SENTINEL", "sentinels", ServiceName) is not object?[] { Length: >= 2 })
            {
                return false;
            }
        }

        return true;
    }

    private static string Flags(object?[] fields)
    {
        for (var i = 0; i + 1 < fields.Length; i += 2)
        {
            if (fields[i] as string == "flags")
            {
                return fields[i + 1] as string ?? "";
            }
        }

        return "";
    }

    private static async Task<bool> InSyncAsync(RedisProcess primary, RedisProcess replica)
    {
        var mine = await replica.InfoAsync("replication");
        var theirs = await primary.InfoAsync("replication");
        return mine.GetValueOrDefault("role") == "slave"
            && mine.GetValueOrDefault("master_port") == primary.Port.ToString(CultureInfo.InvariantCulture)
            && mine.GetValueOrDefault("master_link_status") == "up"
            && theirs.GetValueOrDefault("role") == "master"
            && theirs.Any(kv => kv.Key.StartsWith("slave", StringComparison.Ordinal)
                && kv.Value.Contains($"port={replica.Port},", StringComparison.Ordinal)
                && kv.Value.Contains("state=online", StringComparison.Ordinal));
    }

    private static RedisProcess DataNode(string executable, string work, string name, int port, int? replicaOf, int? priority)
    {
        var dir = Directory.CreateDirectory(Path.Combine(work, name)).FullName;
        var conf = Path.Combine(dir, "redis.conf");
        File.WriteAllText(conf, $"""
            port {port}
            bind 127.0.0.1
            dir {dir}
            logfile {Path.Combine(dir, "redis.log")}
            save ""
            appendonly yes
            appendfsync always
            maxmemory-policy noeviction
            min-replicas-to-write 1
            min-replicas-max-lag 10
            repl-diskless-sync-delay 0
            {(replicaOf is { } p ? $"replicaof 127.0.0.1 {p}" : "")}
            {(priority is { } rank ? $"replica-priority {rank}" : "")}

            """);
        return new RedisProcess(executable, name, port, dir, conf, sentinel: false);
    }

    private async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (await condition())
            {
                return;
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"Timed out after {timeout.TotalSeconds} s waiting for {what}.\n{Logs()}");
    }

    /// <summary>The tail of every process's log, for failure messages.</summary>
    public string Logs() => string.Join('\n', Sentinels.Concat(DataNodes).Select(p => p.LogTail()));

    private static void TryDelete(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a temp folder left behind is harmless.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>One redis-server (data node or Sentinel) started from its own configuration file; killable and restartable on the same port and data.</summary>
public sealed class RedisProcess : IAsyncDisposable
{
    private readonly string _executable;
    private readonly bool _sentinel;
    private Process? _process;

    internal RedisProcess(string executable, string name, int port, string directory, string configurationFile, bool sentinel)
    {
        _executable = executable;
        Name = name;
        Port = port;
        Directory = directory;
        ConfigurationFile = configurationFile;
        _sentinel = sentinel;
    }

    public string Name { get; }

    public int Port { get; }

    public string Directory { get; }

    public string ConfigurationFile { get; }

    public int? ProcessId => _process is { HasExited: false } p ? p.Id : null;

    public async Task StartAsync()
    {
        var info = new ProcessStartInfo(_executable) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(ConfigurationFile);
        if (_sentinel)
        {
            info.ArgumentList.Add("--sentinel");
        }

        _process = Process.Start(info) ?? throw new InvalidOperationException($"{Name} did not start.");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"{Name} (redis-server) exited with {_process.ExitCode}:\n{LogTail()}");
            }

            if (await TryCommandAsync("PING") is "PONG")
            {
                return;
            }

            await Task.Delay(25);
        }

        throw new TimeoutException($"{Name} did not answer PING on port {Port} within 10 s.\n{LogTail()}");
    }

    /// <summary>SIGKILL, what a crashed host looks like: no shutdown, no last write.</summary>
    public async Task KillAsync()
    {
        if (_process is null)
        {
            return;
        }

        _process.Kill();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _process.WaitForExitAsync(timeout.Token);
        _process.Dispose();
        _process = null;
    }

    /// <summary>Starts the process again from its (possibly rewritten) configuration file and data.</summary>
    public Task RestartAsync() => StartAsync();

    /// <summary>Deletes the data node's data files (AOF folder, RDB), as a host that lost its disk; only while it is not running.</summary>
    public void DeleteData()
    {
        if (_process is not null)
        {
            throw new InvalidOperationException($"{Name} is running: kill it before deleting its data.");
        }

        foreach (var entry in new DirectoryInfo(Directory).EnumerateFileSystemInfos())
        {
            if (entry is DirectoryInfo folder)
            {
                folder.Delete(recursive: true);
            }
            else if (entry.FullName != ConfigurationFile && entry.Name != "redis.log")
            {
                entry.Delete();
            }
        }
    }

    /// <summary><c>role</c> from INFO replication ("master", "slave"), or null when it does not answer.</summary>
    public async Task<string?> RoleAsync() => (await InfoAsync("replication")).GetValueOrDefault("role");

    /// <summary>One INFO section as key/value pairs; empty when the server does not answer.</summary>
    public async Task<Dictionary<string, string>> InfoAsync(string section)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (await TryCommandAsync("INFO", section) is string text)
        {
            foreach (var line in text.Split("\r\n", StringSplitOptions.RemoveEmptyEntries))
            {
                var colon = line.IndexOf(':', StringComparison.Ordinal);
                if (colon > 0 && !line.StartsWith('#'))
                {
                    result[line[..colon]] = line[(colon + 1)..];
                }
            }
        }

        return result;
    }

    /// <summary>Sends one command over a fresh connection; the parsed reply, or null when the server does not answer or replies with an error.</summary>
    public async Task<object?> TryCommandAsync(params string[] args)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, Port, timeout.Token);
            await using var stream = client.GetStream();
            var request = new StringBuilder().Append('*').Append(args.Length).Append("\r\n");
            foreach (var arg in args)
            {
                request.Append('$').Append(Encoding.UTF8.GetByteCount(arg)).Append("\r\n").Append(arg).Append("\r\n");
            }

            await stream.WriteAsync(Encoding.UTF8.GetBytes(request.ToString()), timeout.Token);
            var reader = new RespReader(stream, timeout.Token);
            return await reader.ReadAsync();
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException or RedisErrorReply)
        {
            return null;
        }
    }

    public string LogTail(int lines = 30)
    {
        var log = Path.Combine(Directory, "redis.log");
        if (!File.Exists(log))
        {
            return $"[{Name}] no log";
        }

        using var stream = new FileStream(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        var all = reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return string.Join('\n', all.TakeLast(lines).Select(l => $"[{Name}] {l}"));
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is not null)
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                await _process.WaitForExitAsync();
            }

            _process.Dispose();
            _process = null;
        }
    }

    private sealed class RedisErrorReply(string message) : Exception(message);

    /// <summary>Just enough RESP2 for INFO, PING and SENTINEL replies.</summary>
    private sealed class RespReader(Stream stream, CancellationToken cancellationToken)
    {
        private readonly byte[] _buffer = new byte[64 * 1024];
        private int _start;
        private int _end;

        public async Task<object?> ReadAsync()
        {
            var line = await ReadLineAsync();
            var body = line[1..];
            switch (line[0])
            {
                case '+':
                    return body;
                case '-':
                    throw new RedisErrorReply(body);
                case ':':
                    return long.Parse(body, CultureInfo.InvariantCulture);
                case '$':
                    var length = int.Parse(body, CultureInfo.InvariantCulture);
                    if (length < 0)
                    {
                        return null;
                    }

                    var bytes = await ReadExactAsync(length + 2);
                    return Encoding.UTF8.GetString(bytes, 0, length);
                case '*':
                    var count = int.Parse(body, CultureInfo.InvariantCulture);
                    if (count < 0)
                    {
                        return null;
                    }

                    var items = new object?[count];
                    for (var i = 0; i < count; i++)
                    {
                        items[i] = await ReadAsync();
                    }

                    return items;
                default:
                    throw new IOException($"Unexpected RESP type '{line[0]}'.");
            }
        }

        private async Task<string> ReadLineAsync()
        {
            while (true)
            {
                for (var i = _start; i + 1 < _end; i++)
                {
                    if (_buffer[i] == '\r' && _buffer[i + 1] == '\n')
                    {
                        var line = Encoding.UTF8.GetString(_buffer, _start, i - _start);
                        _start = i + 2;
                        return line;
                    }
                }

                await FillAsync();
            }
        }

        private async Task<byte[]> ReadExactAsync(int count)
        {
            var result = new byte[count];
            var copied = 0;
            while (copied < count)
            {
                if (_start == _end)
                {
                    await FillAsync();
                }

                var n = Math.Min(count - copied, _end - _start);
                Array.Copy(_buffer, _start, result, copied, n);
                _start += n;
                copied += n;
            }

            return result;
        }

        private async Task FillAsync()
        {
            if (_start > 0)
            {
                Array.Copy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }

            if (_end == _buffer.Length)
            {
                throw new IOException("RESP line longer than the buffer.");
            }

            var read = await stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken);
            if (read == 0)
            {
                throw new IOException("Connection closed.");
            }

            _end += read;
        }
    }
}
