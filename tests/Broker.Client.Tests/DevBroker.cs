using System.Net;
using System.Net.Sockets;
using Broker.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace Broker.Client.Tests;

/// <summary>
/// A real broker in dev mode on real Kestrel, started in-process exactly as
/// <c>Broker.Server --dev</c> starts: in-memory state, generated keys, the dev trust domain, the
/// sample policy and the dev operator key, all written to <see cref="Directory"/> with its
/// dev.json, which brokerctl reads with <c>--dev --dev-dir</c>.
/// </summary>
internal sealed class DevBroker : IAsyncDisposable
{
    private readonly WebApplication _app;

    private DevBroker(WebApplication app, string directory, DevManifest manifest)
    {
        _app = app;
        Directory = directory;
        Manifest = manifest;
    }

    /// <summary>The dev folder (brokerctl's --dev-dir).</summary>
    public string Directory { get; }

    public DevManifest Manifest { get; }

    public string GrpcAddress => Manifest.GrpcAddress;

    public static async Task<DevBroker> StartAsync()
    {
        // A free port can be taken by another process between choosing and binding it: try again.
        for (var attempt = 1; ; attempt++)
        {
            var directory = System.IO.Directory.CreateTempSubdirectory("brokerctl-dev-broker-").FullName;
            try
            {
                return await StartOnceAsync(directory);
            }
            catch (IOException ex) when (attempt < 3 && ex.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException)
            {
                System.IO.Directory.Delete(directory, recursive: true);
            }
        }
    }

    private static async Task<DevBroker> StartOnceAsync(string directory)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Broker:Dev"] = "true",
            ["Broker:DevDirectory"] = directory,
            ["Broker:DevGrpcPort"] = FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Broker:DevHttpPort"] = FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        builder.Logging.ClearProviders();
        builder.AddBroker();
        var app = builder.Build();
        app.MapBroker();
        await app.StartAsync();
        var manifest = (DevManifest)app.Services.GetService(typeof(DevManifest))!;
        return new DevBroker(app, directory, manifest);
    }

    /// <summary>The audit log's lines (JSON), read while the broker may still be writing.</summary>
    public async Task<string[]> AuditLinesAsync()
    {
        // The audit path is a folder of segments (docs/audit.md); read them oldest first.
        var lines = new List<string>();
        foreach (var segment in Broker.Core.Audit.AuditFiles.All(Manifest.AuditFile))
        {
            await using var stream = new FileStream(segment.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            lines.AddRange((await reader.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }

        return [.. lines];
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
