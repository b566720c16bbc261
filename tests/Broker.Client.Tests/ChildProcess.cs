using System.Diagnostics;
using System.Globalization;
using System.Text;
using Broker.Server.Hosting;

namespace Broker.Client.Tests;

/// <summary>
/// A program as a person starts it, mostly <c>dotnet Broker.Server.dll</c>: a child process with
/// its own stdout and stderr. A server either serves (the dev banner appeared) or exits; disposal
/// ends the process it started, by PID.
/// </summary>
internal sealed class ChildProcess : IAsyncDisposable
{
    private static readonly TimeSpan ServerBound = TimeSpan.FromSeconds(90);
    private readonly Process _process;
    private readonly TimeSpan _bound;
    private readonly StringBuilder _out = new();
    private readonly StringBuilder _error = new();
    private readonly TaskCompletionSource _serving = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ChildProcess(Process process, TimeSpan bound)
    {
        _process = process;
        _bound = bound;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            lock (_out)
            {
                _out.AppendLine(e.Data);
            }

            if (e.Data.Contains("DEV MODE", StringComparison.Ordinal))
            {
                _serving.TrySetResult();
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_error)
                {
                    _error.AppendLine(e.Data);
                }
            }
        };
    }

    public string Out
    {
        get
        {
            lock (_out)
            {
                return _out.ToString();
            }
        }
    }

    public string Error
    {
        get
        {
            lock (_error)
            {
                return _error.ToString();
            }
        }
    }

    public static int FreePort() => Broker.Testing.LoopbackPorts.Next();

    public static string Port() => FreePort().ToString(CultureInfo.InvariantCulture);

    /// <summary>The server the tests are built with (copied next to them by the project reference).</summary>
    public static string ServerDll => typeof(StartupValidation).Assembly.Location;

    public static ChildProcess StartServer(params string[] args) => Start("dotnet", ServerBound, [ServerDll, .. args]);

    /// <summary>Runs the server until it exits on its own (a refusal, --help) and returns its exit code.</summary>
    public static Task<(int Code, string Out, string Error)> RunServerToExitAsync(params string[] args) => RunToExitAsync("dotnet", ServerBound, [ServerDll, .. args]);

    /// <summary>Runs <paramref name="file"/> until it exits, at most <paramref name="bound"/>.</summary>
    public static async Task<(int Code, string Out, string Error)> RunToExitAsync(string file, TimeSpan bound, params string[] args)
    {
        await using var child = Start(file, bound, args);
        var code = await child.ExitCodeAsync();
        return (code, child.Out, child.Error);
    }

    /// <summary>Starts <paramref name="file"/> and leaves it running (read <see cref="Out"/> and <see cref="Error"/> as it writes).</summary>
    public static ChildProcess StartProgram(string file, TimeSpan bound, params string[] args) => Start(file, bound, args);

    private static ChildProcess Start(string file, TimeSpan bound, string[] args)
    {
        var info = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["DOTNET_NOLOGO"] = "1";
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment.Remove("ASPNETCORE_ENVIRONMENT");
        var process = Process.Start(info) ?? throw new InvalidOperationException($"{file} did not start");
        var child = new ChildProcess(process, bound);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    public async Task<int> ExitCodeAsync()
    {
        using var timeout = new CancellationTokenSource(_bound);
        await _process.WaitForExitAsync(timeout.Token);
        return _process.ExitCode;
    }

    /// <summary>Waits for the dev banner, which the server prints once its ports are bound.</summary>
    public async Task WaitServingAsync()
    {
        var exited = _process.WaitForExitAsync();
        var first = await Task.WhenAny(_serving.Task, exited, Task.Delay(_bound));
        if (first != _serving.Task)
        {
            throw new InvalidOperationException($"the server did not serve (exited: {_process.HasExited}):\n{Out}\n{Error}");
        }
    }

    /// <summary>A clean stop (SIGTERM, as systemd or Ctrl-C would): the node seals its audit segment and exits 0.</summary>
    public async Task<int> StopAsync()
    {
        if (!_process.HasExited)
        {
            using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)])!;
            await kill.WaitForExitAsync();
        }

        return await ExitCodeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}
