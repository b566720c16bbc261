using System.Net;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using RevocationSelector = Broker.V1.RevocationSelector;

namespace Broker.Server.Tests.Ssf;

/// <summary>
/// Push delivery (RFC 8935) from real nodes sharing a real Redis to a receiver endpoint on real
/// Kestrel: each revocation arrives once, signed, with the configured Authorization, retried with
/// backoff after failures, dropped after an RFC 8935 refusal, and never pushed by two nodes.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class SsfPushTests(RedisFixture redis) : IAsyncLifetime
{
    private readonly string _prefix = RedisFixture.NewPrefix();
    private BrokerScenario _a = null!;
    private BrokerTestHost _b = null!;
    private SsfPushReceiver _endpoint = null!;

    public async Task InitializeAsync()
    {
        _a = await BrokerScenario.StartAsync(redis.Server.Configuration, redisPrefix: _prefix);
        _b = await _a.StartPeerAsync(redis.Server.Configuration, _prefix);
        _endpoint = await SsfPushReceiver.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _endpoint.DisposeAsync();
        await _b.DisposeAsync();
        await _a.DisposeAsync();
    }

    private SsfReceiverClient Receiver(string name) =>
        new(_a.Host.HttpAddress, () => _a.Operators.Token(name, [ResourceServerTokenHandler.Role], ResourceServerTokenHandler.Audience));

    private async Task<string> CreatePushStreamAsync(SsfReceiverClient receiver, string? authorization = null)
    {
        var created = await receiver.CreateAsync(new { delivery = new { method = SsfReceiverClient.Push, endpoint_url = _endpoint.Url, authorization_header = authorization } });
        Assert.Equal(HttpStatusCode.Created, created.Status);
        Assert.Equal(_endpoint.Url, created.Body.GetProperty("delivery").GetProperty("endpoint_url").GetString());
        Assert.False(created.Body.GetProperty("delivery").TryGetProperty("authorization_header", out _));
        return created.StreamId;
    }

    private async Task<List<string>> TxnsAsync(string audience) =>
        [.. await Task.WhenAll(_endpoint.Accepted.ToList().Select(async set => (await SsfReceiverClient.VerifyAsync(_a.Host.Issuer, audience, set)).GetProperty("txn").GetString()!))];

    [Fact]
    public async Task A_revocation_is_pushed_signed_with_the_streams_authorization_and_retried_after_failures()
    {
        using var receiver = Receiver("api-push");
        _endpoint.AnswerNext(2, 503);
        var streamId = await CreatePushStreamAsync(receiver, "Bearer receiver-secret");

        var txn = (await _a.RevokeAsync("pushed", new RevocationSelector { TaskId = "push-task" })).Revocations.Single().Id;

        await Poll.UntilAsync(() => _endpoint.Accepted.Count() >= 2, "the epoch cut-off and the revocation are accepted");
        var txns = await TxnsAsync("api-push");
        Assert.Single(txns, t => t == txn);
        Assert.Equal(txns.Count, txns.Distinct().Count());
        Assert.Equal(2, _endpoint.Posts.Count(p => p.Answered == 503));

        // The refused SET was the same one pushed again, before anything behind it.
        var posts = _endpoint.Posts.ToList();
        Assert.Equal(posts[0].Set, posts[1].Set);
        Assert.Equal(posts[0].Set, posts[2].Set);
        Assert.All(posts, p => Assert.Equal("application/secevent+jwt", p.ContentType));
        Assert.All(posts, p => Assert.Equal("Bearer receiver-secret", p.Authorization));
        await Poll.UntilAsync(() => Pending(streamId) == 0, "delivered SETs leave the queue");

        var polled = await receiver.PollAsync(streamId);
        Assert.Equal(HttpStatusCode.BadRequest, polled.Status);
        Assert.Contains("push", polled["description"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_nodes_push_each_revocation_once()
    {
        using var receiver = Receiver("api-push-once");
        await CreatePushStreamAsync(receiver);
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            ids.Add((await _a.RevokeAsync("once", new RevocationSelector { TaskId = $"push-once-{i}" })).Revocations.Single().Id);
        }

        await Poll.UntilAsync(() => _endpoint.Accepted.Count() >= ids.Count + 1, "every revocation is pushed");
        var txns = await TxnsAsync("api-push-once");
        foreach (var id in ids)
        {
            Assert.Single(txns, t => t == id);
        }

        Assert.Equal(txns.Count, txns.Distinct().Count());
        Assert.Equal(_endpoint.Posts.Count, _endpoint.Accepted.Count());
    }

    [Fact]
    public async Task A_set_the_receiver_refuses_with_an_rfc_8935_error_is_not_pushed_again()
    {
        using var receiver = Receiver("api-push-refuses");
        _endpoint.AnswerNext(1, 400, """{"err":"invalid_audience","description":"not for us"}""");
        var streamId = await CreatePushStreamAsync(receiver);
        var txn = (await _a.RevokeAsync("refused then fine", new RevocationSelector { TaskId = "push-refused" })).Revocations.Single().Id;

        await Poll.UntilAsync(() => _endpoint.Accepted.Any(), "the SET after the refused one is pushed");
        await Poll.UntilAsync(() => Pending(streamId) == 0, "the queue drains");

        var refused = Assert.Single(_endpoint.Posts, p => p.Answered == 400).Set;
        Assert.DoesNotContain(refused, _endpoint.Accepted);
        Assert.Contains(txn, await TxnsAsync("api-push-refuses"));
    }

    private long Pending(string streamId) => redis.Connection.GetDatabase().StreamLength(new Broker.Redis.RedisKeys(_prefix).SsfQueue(streamId));
}
