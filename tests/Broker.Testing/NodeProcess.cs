using System.Diagnostics;

namespace Broker.Testing;

/// <summary>What a Node.js run printed and how it ended.</summary>
public sealed record NodeRun(int ExitCode, string Output, string Error);

/// <summary>
/// Runs <c>node</c> for tests that check Broker against code written outside .NET. A missing
/// Node.js is an error naming what to install, never a skip.
/// </summary>
public static class NodeProcess
{
    public static async Task<NodeRun> RunAsync(IEnumerable<string> arguments, string? workingDirectory = null, string? stdin = null, IReadOnlyDictionary<string, string>? environment = null, TimeSpan? timeout = null)
    {
        var info = new ProcessStartInfo("node") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (workingDirectory is not null)
        {
            info.WorkingDirectory = workingDirectory;
        }

        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }

        Process process;
        try
        {
            process = Process.Start(info)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("This test needs Node.js 20+ on PATH (Debian: apt-get install -y nodejs npm).", e);
        }

        using (process)
        {
            using var deadline = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
            if (stdin is not null)
            {
                await process.StandardInput.WriteAsync(stdin);
            }

            process.StandardInput.Close();
            var output = process.StandardOutput.ReadToEndAsync(deadline.Token);
            var error = process.StandardError.ReadToEndAsync(deadline.Token);
            await process.WaitForExitAsync(deadline.Token);
            return new NodeRun(process.ExitCode, await output, await error);
        }
    }
}
