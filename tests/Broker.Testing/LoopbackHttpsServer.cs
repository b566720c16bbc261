using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Broker.Testing;

/// <summary>
/// A real Kestrel HTTPS server on 127.0.0.1 (a free port) serving canned documents, counting
/// every request per path, so tests can serve JWKS and discovery documents and prove that a
/// URL was (or was never) fetched.
/// </summary>
public sealed class LoopbackHttpsServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, Uri> _redirects = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (int Status, string Body)> _routes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _hits = new(StringComparer.Ordinal);

    private LoopbackHttpsServer(WebApplication app, Uri baseAddress)
    {
        _app = app;
        BaseAddress = baseAddress;
    }

    /// <summary><c>https://127.0.0.1:{port}</c>, no trailing slash.</summary>
    public Uri BaseAddress { get; }

    /// <summary>Requests received on any path.</summary>
    public int TotalHits => _hits.Values.Sum();

    /// <summary>Starts serving with <paramref name="certificate"/> (e.g. <see cref="TestPki.IssueServerCertificate"/>).</summary>
    public static async Task<LoopbackHttpsServer> StartAsync(X509Certificate2 certificate)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(certificate)));
        var app = builder.Build();

        LoopbackHttpsServer? server = null;
        app.Run(context => server!.HandleAsync(context));
        await app.StartAsync();

        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        server = new LoopbackHttpsServer(app, new Uri(address.TrimEnd('/')));
        return server;
    }

    /// <summary>The absolute URL of <paramref name="path"/> on this server.</summary>
    public Uri Url(string path) => new(BaseAddress, path);

    /// <summary>Serves <paramref name="body"/> as JSON at <paramref name="path"/>.</summary>
    public void Serve(string path, string body, int status = 200) => _routes[path] = (status, body);

    /// <summary>Answers <paramref name="path"/> with a 302 to <paramref name="location"/>.</summary>
    public void Redirect(string path, Uri location) => _redirects[path] = location;

    /// <summary>Requests received for <paramref name="path"/>.</summary>
    public int Hits(string path) => _hits.GetValueOrDefault(path);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task HandleAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "/";
        _hits.AddOrUpdate(path, 1, (_, n) => n + 1);
        if (_redirects.TryGetValue(path, out var location))
        {
            context.Response.Redirect(location.ToString());
            return;
        }

        if (!_routes.TryGetValue(path, out var route))
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        context.Response.StatusCode = route.Status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(route.Body);
    }
}
