using System.Collections.Concurrent;
using System.Net;
using Broker.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Broker.Server.Tests.Infrastructure;

/// <summary>
/// A push receiver's endpoint (RFC 8935) on real Kestrel on loopback: records every POST (its
/// content type, Authorization header and SET) and answers 202, or what the test asks for next.
/// </summary>
public sealed class SsfPushReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<Func<HttpContext, Task>> _answers = new();

    private SsfPushReceiver(WebApplication app, string url)
    {
        _app = app;
        Url = url;
    }

    public string Url { get; }

    /// <summary>Every POST, accepted or not, in arrival order.</summary>
    public ConcurrentQueue<(string ContentType, string Authorization, string Set, int Answered)> Posts { get; } = new();

    public IEnumerable<string> Accepted => Posts.Where(p => p.Answered == 202).Select(p => p.Set);

    public static async Task<SsfPushReceiver> StartAsync()
    {
        var port = RedisServer.FreePort();
        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
        var app = builder.Build();
        var receiver = new SsfPushReceiver(app, $"http://127.0.0.1:{port}/ssf/events");
        app.MapPost("/ssf/events", async (HttpContext http) =>
        {
            using var reader = new StreamReader(http.Request.Body);
            var set = await reader.ReadToEndAsync();
            if (receiver._answers.TryDequeue(out var answer))
            {
                await answer(http);
            }
            else
            {
                http.Response.StatusCode = 202;
            }

            receiver.Posts.Enqueue((http.Request.ContentType ?? "", http.Request.Headers.Authorization.ToString(), set, http.Response.StatusCode));
        });
        await app.StartAsync();
        return receiver;
    }

    /// <summary>Answers the next <paramref name="count"/> posts with <paramref name="status"/> (and <paramref name="json"/> as body).</summary>
    public void AnswerNext(int count, int status, string? json = null)
    {
        for (var i = 0; i < count; i++)
        {
            _answers.Enqueue(async http =>
            {
                http.Response.StatusCode = status;
                if (json is not null)
                {
                    http.Response.ContentType = "application/json";
                    await http.Response.WriteAsync(json);
                }
            });
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
