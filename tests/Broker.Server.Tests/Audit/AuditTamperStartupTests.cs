using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Broker.Core.Audit;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace Broker.Server.Tests.Audit;

/// <summary>
/// The real server process on a tampered audit folder: it refuses to start with one line
/// (BRK1040) and exit code 10, and starts once the operator acknowledges exactly what it found,
/// recording that in the chain.
/// </summary>
public sealed partial class AuditTamperStartupTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);
    private readonly string _dev = Directory.CreateTempSubdirectory("broker-tamper-").FullName;

    private string AuditFolder => Path.Combine(_dev, "audit");

    private string KeyFile => Path.Combine(_dev, "audit-checkpoint.key.pem");

    [Fact]
    public async Task A_node_on_a_tampered_log_exits_10_with_one_line_until_the_finding_is_acknowledged()
    {
        using (var key = ECDsa.Create(ECCurve.NamedCurves.nistP256))
        {
            await File.WriteAllTextAsync(KeyFile, key.ExportPkcs8PrivateKeyPem());
            await using var sink = new FileAuditSink(new FileAuditOptions { Directory = AuditFolder, CheckpointKey = key, SegmentMaxBytes = 4096 }, TimeProvider.System, NullLogger<FileAuditSink>.Instance);
            for (var i = 0; i < 20; i++)
            {
                await sink.AppendAsync(new AuditEvent { EventId = 3000, Type = "task.ended", Time = DateTimeOffset.UtcNow, CorrelationId = $"c-{i}", Outcome = "success", TaskId = $"t-{i}" }, CancellationToken.None);
            }
        }

        var segment = AuditFiles.All(AuditFolder)[1].Path;
        var lines = (await File.ReadAllLinesAsync(segment)).ToList();
        lines.RemoveAt(2);
        await File.WriteAllTextAsync(segment, string.Join('\n', lines) + "\n");

        var (code, stdout, stderr) = await RunUntilExitAsync();

        Assert.Equal(10, code);
        var message = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("BRK1040: ", message, StringComparison.Ordinal);
        Assert.Contains(Path.GetFileName(segment) + ":3: seq ", message, StringComparison.Ordinal);
        var fingerprint = Fingerprint().Match(message).Groups[1].Value;
        Assert.Equal(16, fingerprint.Length);
        Assert.DoesNotContain("   at ", stdout + stderr, StringComparison.Ordinal);

        // Acknowledged: it starts, and the first record of its new segment names the finding.
        await RunUntilServingAsync("--acknowledge-tamper", fingerprint);
        var acknowledgement = AuditReader.ReadAll([AuditFolder]).Select(r => r.Event).Single(e => e.EventId == 7001);
        Assert.Contains(acknowledgement.Findings!, f => f.StartsWith(Path.GetFileName(segment) + ":3: seq ", StringComparison.Ordinal));
        Assert.Contains(fingerprint, acknowledgement.Detail, StringComparison.Ordinal);
    }

    private ProcessStartInfo Start(params string[] extra)
    {
        var info = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        info.ArgumentList.Add(BrokerNodeProcess.ServerDll());
        foreach (var arg in new[] { "--dev", "--dev-dir", _dev, "--grpc-port", Port(), "--http-port", Port(), "--Broker:Audit:CheckpointKeyPath=" + KeyFile }.Concat(extra))
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["DOTNET_NOLOGO"] = "1";
        return info;
    }

    private static string Port() => RedisServer.FreePort().ToString(CultureInfo.InvariantCulture);

    private async Task<(int Code, string Out, string Error)> RunUntilExitAsync(params string[] extra)
    {
        using var process = Process.Start(Start(extra))!;
        using var timeout = new CancellationTokenSource(Bound);
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }

        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Starts the server, waits for its dev banner (printed once it serves), then stops it.</summary>
    private async Task RunUntilServingAsync(params string[] extra)
    {
        using var process = Process.Start(Start(extra))!;
        using var timeout = new CancellationTokenSource(Bound);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        try
        {
            while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
            {
                if (line.Contains("DEV MODE", StringComparison.Ordinal))
                {
                    return;
                }
            }

            Assert.Fail($"the server exited ({(process.HasExited ? process.ExitCode : -1)}) before serving: {await stderr}");
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None);
            }
        }
    }

    [GeneratedRegex("--acknowledge-tamper ([0-9a-f]+)")]
    private static partial Regex Fingerprint();

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dev, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
