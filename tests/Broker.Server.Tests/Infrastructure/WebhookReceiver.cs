using System.Collections.Concurrent;
using System.Net;
using Broker.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Broker.Server.Tests.Infrastructure;

/// <summary>
/// A real HTTP endpoint on loopback that records what is POSTed to it, and can refuse the first
/// few posts (with a status and a <c>Retry-After</c> of the test's choosing).
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _refuseNext;
    private int _refusalStatus = 503;
    private TimeSpan? _retryAfter;
    private int _refused;

    private WebhookReceiver(WebApplication app, Uri url)
    {
        _app = app;
        Url = url;
    }

    public Uri Url { get; }

    public ConcurrentQueue<(string Body, string? Signature)> Received { get; } = new();

    /// <summary>Posts refused so far.</summary>
    public int Refused => Volatile.Read(ref _refused);

    public static async Task<WebhookReceiver> StartAsync()
    {
        var port = RedisServer.FreePort();
        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
        var app = builder.Build();
        var receiver = new WebhookReceiver(app, new Uri($"http://127.0.0.1:{port}/hooks/approvals"));
        app.MapPost("/hooks/approvals", async (HttpContext http) =>
        {
            using var reader = new StreamReader(http.Request.Body);
            var body = await reader.ReadToEndAsync();
            if (Interlocked.Decrement(ref receiver._refuseNext) >= 0)
            {
                Interlocked.Increment(ref receiver._refused);
                if (receiver._retryAfter is { } wait)
                {
                    http.Response.Headers.RetryAfter = ((int)wait.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
                }

                return Results.StatusCode(receiver._refusalStatus);
            }

            receiver.Received.Enqueue((body, http.Request.Headers["Broker-Signature"].ToString()));
            return Results.Ok();
        });
        await app.StartAsync();
        return receiver;
    }

    /// <summary>Answers the next <paramref name="count"/> posts with <paramref name="status"/>, and a <c>Retry-After</c> in whole seconds if given.</summary>
    public void RefuseNext(int count, int status = 503, TimeSpan? retryAfter = null)
    {
        _refusalStatus = status;
        _retryAfter = retryAfter;
        Volatile.Write(ref _refuseNext, count);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
