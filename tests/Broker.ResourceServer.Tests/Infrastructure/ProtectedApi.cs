using System.Net;
using System.Net.Http.Headers;
using Broker.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Broker.ResourceServer.Tests.Infrastructure;

/// <summary>A minimal API on real Kestrel protected by the SDK, exactly as docs/resource-server.md shows.</summary>
public sealed class ProtectedApi : IAsyncDisposable
{
    private readonly WebApplication _app;

    private ProtectedApi(WebApplication app, string address)
    {
        _app = app;
        Address = address;
        Http = new HttpClient { BaseAddress = new Uri(address) };
        Revocations = app.Services.GetRequiredService<BrokerRevocationClient>();
    }

    public string Address { get; }

    public HttpClient Http { get; }

    public BrokerRevocationClient Revocations { get; }

    /// <param name="tokenFile">The resource-server token file the SDK presents on the revocation stream.</param>
    public static async Task<ProtectedApi> StartAsync(string tokenFile, string issuer, string revocationAddress, Action<BrokerJwtBearerOptions>? configure = null)
    {
        var port = RedisServer.FreePort();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
        builder.Services.AddBrokerResourceServer(options =>
        {
            options.Authority = issuer;
            options.Audience = BrokerNode.ApiAudience;
            options.RevocationAddress = revocationAddress;
            options.RevocationTokenFile = tokenFile;
            options.RequireHttpsMetadata = false; // loopback broker
            configure?.Invoke(options);
        });
        var app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapGet("/whoami", (HttpContext context) => context.User.FindFirst("sub")?.Value).RequireAuthorization();
        app.MapPost("/deploy/prod", () => "deployed to prod").RequireBrokerScope("deploy:prod");
        app.MapPost("/deploy/staging", () => "deployed to staging").RequireBrokerScope("deploy:staging").RequireBrokerPhase(BrokerPhases.Execution);
        app.MapPost("/execute", () => "executed").RequireBrokerPhase(BrokerPhases.Execution);
        await app.StartAsync();
        return new ProtectedApi(app, $"http://127.0.0.1:{port}");
    }

    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? token)
    {
        using var request = new HttpRequestMessage(method, path);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        return await Http.SendAsync(request);
    }

    public Task<HttpResponseMessage> GetAsync(string path, string? token) => SendAsync(HttpMethod.Get, path, token);

    public Task<HttpResponseMessage> PostAsync(string path, string? token) => SendAsync(HttpMethod.Post, path, token);

    /// <summary>Waits (bounded) until the SDK holds a confirmed revocation state.</summary>
    public Task WaitCurrentAsync() => Eventually.TrueAsync(() => Task.FromResult(Revocations.IsCurrent), TimeSpan.FromSeconds(10), "revocation client never became current");

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>Bounded polling: conditions that become true "soon" are awaited, never slept for.</summary>
public static class Eventually
{
    public static async Task<TimeSpan> TrueAsync(Func<Task<bool>> condition, TimeSpan timeout, string because)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            if (await condition())
            {
                return started.Elapsed;
            }

            if (started.Elapsed > timeout)
            {
                Assert.Fail($"Not true within {timeout}: {because}");
            }

            await Task.Delay(10);
        }
    }
}
