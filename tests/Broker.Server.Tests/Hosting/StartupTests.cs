using System.Diagnostics;
using Broker.Server.Hosting;

namespace Broker.Server.Tests.Hosting;

public sealed class StartupTests
{
    [Fact]
    public void Production_without_configuration_names_every_missing_piece()
    {
        var problems = StartupValidation.Problems(new BrokerOptions());

        Assert.Contains(problems, p => p.StartsWith("BRK1001", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("BRK1002", StringComparison.Ordinal) && p.Contains("Redis", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("BRK1003", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("BRK1004", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("BRK1005", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("http://broker.example.org", false)]
    [InlineData("https://broker.example.org", true)]
    [InlineData("http://127.0.0.1:8080", true)]
    [InlineData("not a url", false)]
    public void Issuer_must_be_https_except_on_loopback(string issuer, bool accepted)
    {
        var problems = StartupValidation.Problems(new BrokerOptions { Issuer = issuer });

        Assert.Equal(accepted, !problems.Any(p => p.StartsWith("BRK1001", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("00:00:00", true)]
    [InlineData("-00:00:01", true)]
    [InlineData("00:00:10", false)]
    public void A_non_positive_approval_sweep_interval_is_refused_even_in_dev(string interval, bool refused)
    {
        var options = new BrokerOptions { Dev = true, Approvals = { SweepInterval = TimeSpan.Parse(interval, System.Globalization.CultureInfo.InvariantCulture) } };

        Assert.Equal(refused, StartupValidation.Problems(options).Any(p => p.StartsWith("BRK1013", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("https://chat.example.org/hooks/broker", 32, false)]
    [InlineData("http://127.0.0.1:9000/hook", 32, false)]
    [InlineData("http://chat.example.org/hooks/broker", 32, true)]
    [InlineData("https://chat.example.org/hooks/broker", 16, true)]
    [InlineData("https://chat.example.org/hooks/broker", -1, true)]
    public void An_approval_webhook_needs_https_and_a_real_key(string url, int keyBytes, bool refused)
    {
        var keyPath = Path.Combine(Directory.CreateTempSubdirectory("broker-hook-").FullName, "key");
        if (keyBytes >= 0)
        {
            File.WriteAllBytes(keyPath, new byte[keyBytes]);
        }

        var options = new BrokerOptions { Dev = true, Approvals = { WebhookUrl = url, WebhookKeyPath = keyPath } };

        Assert.Equal(refused, StartupValidation.Problems(options).Any(p => p.StartsWith("BRK1014", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Server_process_refuses_to_start_without_redis_and_trust_and_says_why()
    {
        // The real entry point, as an operator would meet it.
        var serverDll = typeof(StartupValidation).Assembly.Location;
        var info = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        info.ArgumentList.Add(serverDll);
        info.ArgumentList.Add("--urls");
        info.ArgumentList.Add("http://127.0.0.1:0");
        using var process = Process.Start(info)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var stderr = await process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);

        Assert.Equal(2, process.ExitCode);
        Assert.Contains("Broker cannot start", stderr, StringComparison.Ordinal);
        Assert.Contains("BRK1002", stderr, StringComparison.Ordinal);
        Assert.Contains("BRK1003", stderr, StringComparison.Ordinal);
    }
}
