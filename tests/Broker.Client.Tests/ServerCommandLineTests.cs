using System.Net;
using System.Net.Sockets;

namespace Broker.Client.Tests;

/// <summary>
/// The server's own command line, in a real process: --help, and ports that are taken or not
/// ports at all, each one line with a stable id and a documented exit code, never a stack trace.
/// </summary>
public sealed class ServerCommandLineTests : IDisposable
{
    private readonly string _dev = Directory.CreateTempSubdirectory("broker-cmdline-").FullName;

    [Fact]
    public async Task Help_lists_the_flags_the_settings_and_the_exit_codes_and_starts_nothing()
    {
        var (code, stdout, stderr) = await ChildProcess.RunServerToExitAsync("--help");

        Assert.Equal(0, code);
        Assert.StartsWith("Usage: Broker.Server", stdout, StringComparison.Ordinal);
        foreach (var expected in new[] { "--dev", "--grpc-port", "--http-port", "--audit-dir", "Broker:Issuer", "Broker:AuditPath", "Broker:Redis:Configuration", "11  the audit folder is in use", "12  a listener could not bind" })
        {
            Assert.Contains(expected, stdout, StringComparison.Ordinal);
        }

        Assert.Empty(stderr);
    }

    [Fact]
    public async Task A_busy_port_is_one_line_BRK1161_and_exit_12_and_no_banner()
    {
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var busy = ((IPEndPoint)holder.LocalEndpoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

        var (code, stdout, stderr) = await ChildProcess.RunServerToExitAsync("--dev", "--dev-dir", _dev, "--grpc-port", busy, "--http-port", ChildProcess.Port());

        Assert.Equal(12, code);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("BRK1161: ", line, StringComparison.Ordinal);
        Assert.Contains($"127.0.0.1:{busy}", line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stdout + stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", stdout + stderr, StringComparison.Ordinal);

        // The banner tells people where to connect: a node that never listened prints none, and
        // leaves no dev.json pointing brokerctl at it.
        Assert.DoesNotContain("DEV MODE", stdout, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_dev, "dev.json")));
    }

    [Fact]
    public async Task A_busy_port_with_the_approval_webhook_configured_is_still_one_line_and_no_crash_report()
    {
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var busy = ((IPEndPoint)holder.LocalEndpoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var key = Path.Combine(_dev, "webhook.key");
        await File.WriteAllBytesAsync(key, System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

        // The webhook's background loop is cancelled without a Stop call when start fails; that
        // is no crash (no "BackgroundService failed", no critical entry with a stack trace).
        var (code, stdout, stderr) = await ChildProcess.RunServerToExitAsync(
            "--dev", "--dev-dir", _dev, "--grpc-port", busy, "--http-port", ChildProcess.Port(),
            "--Broker:Approvals:WebhookUrl=http://127.0.0.1:9/hooks/approvals", $"--Broker:Approvals:WebhookKeyPath={key}");

        Assert.Equal(12, code);
        Assert.StartsWith("BRK1161: ", Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
        Assert.DoesNotContain("crit:", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stdout + stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", stdout + stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("0")]
    [InlineData("70000")]
    public async Task A_dev_port_that_is_not_a_port_is_one_line_BRK1162_and_exit_2(string port)
    {
        var (code, stdout, stderr) = await ChildProcess.RunServerToExitAsync("--dev", "--dev-dir", _dev, "--grpc-port", port);

        Assert.Equal(2, code);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal($"Broker cannot start: BRK1162: --grpc-port '{port}' is not a port number (1-65535).", line);
        Assert.DoesNotContain("   at ", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_dev_banner_names_the_addresses_the_node_bound()
    {
        var grpc = ChildProcess.Port();
        var http = ChildProcess.Port();
        await using var server = ChildProcess.StartServer("--dev", "--dev-dir", _dev, "--grpc-port", grpc, "--http-port", http);
        await server.WaitServingAsync();

        // Printed once Kestrel bound: the HTTP port answers by the time the banner is out.
        using var client = new HttpClient();
        Assert.True((await client.GetAsync(new Uri($"http://127.0.0.1:{http}/healthz"))).IsSuccessStatusCode);
        Assert.Contains($"gRPC (h2c):   http://127.0.0.1:{grpc}", server.Out, StringComparison.Ordinal);
        Assert.Contains($"HTTP:         http://127.0.0.1:{http}", server.Out, StringComparison.Ordinal);
        Assert.Equal(0, await server.StopAsync());
    }

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
