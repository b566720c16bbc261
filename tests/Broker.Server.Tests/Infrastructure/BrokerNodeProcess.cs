using System.Diagnostics;
using System.Globalization;
using Grpc.Net.Client;

namespace Broker.Server.Tests.Infrastructure;

/// <summary>
/// One broker node in an OS process of its own, started from the built Broker.Server.dll with
/// <c>dotnet</c> and configured through environment variables exactly as deploy/local/cluster.sh
/// does (production mode, a gRPC HTTP/2 endpoint and an HTTP/1 endpoint on loopback). It runs with
/// the shipped runtime settings (Broker.Server.runtimeconfig.json), not the test process's.
/// Output goes to a log file; disposal ends the process it started, by PID.
/// </summary>
public sealed class BrokerNodeProcess : IAsyncDisposable
{
    private readonly Process _process;

    private BrokerNodeProcess(string name, Process process, int grpcPort, int httpPort, string auditPath, string logPath, Func<string>? resourceServerToken)
    {
        Name = name;
        _process = process;
        GrpcAddress = $"http://127.0.0.1:{grpcPort}";
        HttpAddress = $"http://127.0.0.1:{httpPort}";
        AuditPath = auditPath;
        LogPath = logPath;
        Channel = resourceServerToken is null
            ? GrpcChannel.ForAddress(GrpcAddress)
            : GrpcChannel.ForAddress(GrpcAddress, new GrpcChannelOptions { HttpHandler = new Broker.Testing.ResourceServerTokenHandler(resourceServerToken, new SocketsHttpHandler()) });
    }

    public string Name { get; }

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

    public string GrpcAddress { get; }

    public string HttpAddress { get; }

    public string AuditPath { get; }

    public string LogPath { get; }

    public GrpcChannel Channel { get; }

    /// <summary>Whether <c>BROKER_DLL</c> names another server build to run (as for deploy/local/cluster.sh), e.g. one with other runtime settings.</summary>
    public static bool ServerDllOverridden => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("BROKER_DLL"));

    /// <summary>
    /// <c>BROKER_DLL</c> when set; otherwise the server the tests are built against:
    /// broker/Broker.Server/bin/&lt;configuration&gt;/net10.0/Broker.Server.dll.
    /// </summary>
    public static string ServerDll()
    {
        if (ServerDllOverridden)
        {
            var chosen = Path.GetFullPath(Environment.GetEnvironmentVariable("BROKER_DLL")!);
            return File.Exists(chosen) ? chosen : throw new FileNotFoundException("BROKER_DLL does not exist.", chosen);
        }

        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
        var dll = Path.Combine(RepoRoot(), "broker", "Broker.Server", "bin", configuration, "net10.0", "Broker.Server.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException($"Build broker/Broker.Server ({configuration}) first.", dll);
    }

    /// <summary>
    /// Starts <c>dotnet Broker.Server.dll</c> in <paramref name="directory"/> on two free loopback
    /// ports with <paramref name="settings"/> (configuration keys such as <c>Broker:Issuer</c>,
    /// passed as <c>Broker__Issuer</c>) and returns once it is listening (gRPC liveness answers).
    /// RevocationService calls on <see cref="Channel"/> carry <paramref name="resourceServerToken"/>.
    /// </summary>
    public static async Task<BrokerNodeProcess> StartAsync(string name, string directory, IReadOnlyDictionary<string, string> settings, int grpcPort, int httpPort, TimeSpan timeout, Func<string>? resourceServerToken = null)
    {
        Directory.CreateDirectory(directory);
        var log = Path.Combine(directory, "node.log");
        var info = new ProcessStartInfo("bash") { UseShellExecute = false, WorkingDirectory = directory };

        // As cluster.sh: the shell execs dotnet, so the PID is the node's, and output goes to a file.
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add("exec dotnet \"$0\" --Broker:ClusterNode=\"$1\" </dev/null >\"$2\" 2>&1");
        info.ArgumentList.Add(ServerDll());
        info.ArgumentList.Add(name);
        info.ArgumentList.Add(log);
        foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("Broker__", StringComparison.Ordinal) || k.StartsWith("Kestrel__", StringComparison.Ordinal) || k.StartsWith("ASPNETCORE_", StringComparison.Ordinal) || k.StartsWith("DOTNET_ThreadPool", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            info.Environment.Remove(key);
        }

        info.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        info.Environment["DOTNET_NOLOGO"] = "1";
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["Kestrel__Endpoints__Grpc__Url"] = $"http://127.0.0.1:{grpcPort}";
        info.Environment["Kestrel__Endpoints__Grpc__Protocols"] = "Http2";
        info.Environment["Kestrel__Endpoints__Http__Url"] = $"http://127.0.0.1:{httpPort}";
        info.Environment["Kestrel__Endpoints__Http__Protocols"] = "Http1";
        foreach (var (key, value) in settings)
        {
            info.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException($"{name} did not start.");
        var node = new BrokerNodeProcess(name, process, grpcPort, httpPort, settings.GetValueOrDefault("Broker:AuditPath") ?? "", log, resourceServerToken);
        try
        {
            var deadline = DateTime.UtcNow + timeout;
            while (!await node.LiveAsync(TimeSpan.FromSeconds(2)))
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"{name} exited with {process.ExitCode}:\n{node.LogTail()}");
                }

                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"{name} did not answer within {timeout.TotalSeconds} s:\n{node.LogTail()}");
                }

                await Task.Delay(100);
            }

            return node;
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }
    }

    /// <summary>Whether the process serves (the gRPC health service's liveness check, which asks nothing of Redis).</summary>
    public async Task<bool> LiveAsync(TimeSpan deadline)
    {
        try
        {
            var health = new Grpc.Health.V1.Health.HealthClient(Channel);
            var status = await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest { Service = Broker.Server.Hosting.HealthServices.Liveness }, deadline: DateTime.UtcNow + deadline);
            return status.Status == Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving;
        }
        catch (Grpc.Core.RpcException)
        {
            return false;
        }
    }

    public string LogTail(int lines = 40)
    {
        if (!File.Exists(LogPath))
        {
            return $"[{Name}] no log";
        }

        using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return string.Join('\n', reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).TakeLast(lines).Select(l => $"[{Name}] {l}"));
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _process.WaitForExitAsync(timeout.Token);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        _process.Dispose();
    }

    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Broker.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Broker.sln not found above the test folder.");
    }

    /// <summary><c>System.Threading.ThreadPool.MinThreads</c> from the server's runtimeconfig.json next to the DLL, or null when it sets none.</summary>
    public static int? ShippedThreadPoolMinimum()
    {
        var config = Path.ChangeExtension(ServerDll(), ".runtimeconfig.json");
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(config));
        return json.RootElement.GetProperty("runtimeOptions").TryGetProperty("configProperties", out var properties)
            && properties.TryGetProperty("System.Threading.ThreadPool.MinThreads", out var min)
            ? min.GetInt32()
            : null;
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Name} (pid {_process.Id}, {GrpcAddress})");
}
