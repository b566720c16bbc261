using System.Net;
using System.Text.Json;
using Broker.Core.Ssf.Transmitter;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Microsoft.Extensions.DependencyInjection;
using RevocationSelector = Broker.V1.RevocationSelector;

namespace Broker.Server.Tests.Ssf;

/// <summary>
/// Broker as a Shared Signals transmitter on real nodes sharing a real Redis: receivers (plain
/// HTTP clients with resource-server tokens) manage their own streams only, poll signed
/// revocation SETs they verify against the published JWKS, and lose nothing across a restart;
/// two nodes queue each revocation once per stream.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class SsfTransmitterTests(RedisFixture redis) : IAsyncLifetime
{
    private readonly string _prefix = RedisFixture.NewPrefix();
    private readonly List<BrokerTestHost> _peers = [];
    private BrokerScenario _a = null!;

    public async Task InitializeAsync() => _a = await StartAsync();

    public async Task DisposeAsync()
    {
        foreach (var peer in _peers)
        {
            await peer.DisposeAsync();
        }

        await _a.DisposeAsync();
    }

    private Task<BrokerScenario> StartAsync(IReadOnlyDictionary<string, string?>? settings = null) =>
        BrokerScenario.StartAsync(redis.Server.Configuration, redisPrefix: _prefix, settings: settings);

    private SsfReceiverClient Receiver(string name, string? node = null) =>
        new(node ?? _a.Host.HttpAddress, () => _a.Operators.Token(name, [ResourceServerTokenHandler.Role], ResourceServerTokenHandler.Audience));

    private async Task<BrokerTestHost> PeerAsync()
    {
        var peer = await _a.StartPeerAsync(redis.Server.Configuration, _prefix);
        _peers.Add(peer);
        return peer;
    }

    [Fact]
    public async Task The_configuration_metadata_names_what_the_node_serves()
    {
        using var http = new HttpClient();
        using var document = JsonDocument.Parse(await http.GetStringAsync(_a.Host.HttpAddress + "/.well-known/ssf-configuration"));
        var metadata = document.RootElement;
        var issuer = _a.Host.Issuer;

        Assert.Equal("1_0", metadata.GetProperty("spec_version").GetString());
        Assert.Equal(issuer, metadata.GetProperty("issuer").GetString());
        Assert.Equal(issuer + "/.well-known/jwks.json", metadata.GetProperty("jwks_uri").GetString());
        Assert.Equal(new[] { SsfReceiverClient.Push, SsfReceiverClient.Poll }, metadata.GetProperty("delivery_methods_supported").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal(issuer + "/ssf/streams", metadata.GetProperty("configuration_endpoint").GetString());
        Assert.Equal(issuer + "/ssf/verify", metadata.GetProperty("verification_endpoint").GetString());
        Assert.Equal("urn:ietf:rfc:6750", metadata.GetProperty("authorization_schemes")[0].GetProperty("spec_urn").GetString());
        Assert.False(metadata.TryGetProperty("status_endpoint", out _));

        // Each endpoint named is served: without a token each answers 401, not 404.
        using var anonymous = new SsfReceiverClient(_a.Host.HttpAddress, () => null);
        foreach (var answer in new[] { await anonymous.GetAsync(), await anonymous.VerifyAsync("x", null) })
        {
            Assert.Equal(HttpStatusCode.Unauthorized, answer.Status);
            Assert.Equal("authentication_failed", answer.Err);
            Assert.StartsWith("Bearer", answer.WwwAuthenticate, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_revoked_token_reaches_a_poll_stream_as_one_signed_session_revoked_set()
    {
        using var receiver = Receiver("api-one");
        var created = await receiver.CreatePollStreamAsync();
        Assert.Equal(HttpStatusCode.Created, created.Status);
        var streamId = created.StreamId;
        Assert.Equal("api-one", created["aud"]);
        Assert.Equal(_a.Host.Issuer + "/ssf/poll/" + streamId, created.Body.GetProperty("delivery").GetProperty("endpoint_url").GetString());
        Assert.Equal(new[] { SsfReceiverClient.SessionRevoked }, created.Body.GetProperty("events_delivered").EnumerateArray().Select(e => e.GetString()!).ToArray());

        var issued = await _a.Client.IssueCredentialAsync(_a.Request(task: "ssf-token"));
        var revoked = await _a.RevokeAsync("leaked in a log", new RevocationSelector { TokenId = issued.TokenId });

        // A new stream first gets what is in force (the cluster's epoch cut-off), then this revocation.
        var txn = revoked.Revocations.Single().Id;
        var payloads = await RevocationsAsync(receiver, streamId, "api-one", p => p.Any(e => e.GetProperty("txn").GetString() == txn));
        var payload = Assert.Single(payloads, p => p.GetProperty("txn").GetString() == txn);
        Assert.Equal(payloads.Count, payloads.Select(p => p.GetProperty("jti").GetString()).Distinct().Count());
        Assert.True(payload.TryGetProperty("iat", out _));
        var subject = payload.GetProperty("sub_id");
        Assert.Equal("jwt_id", subject.GetProperty("format").GetString());
        Assert.Equal(_a.Host.Issuer, subject.GetProperty("iss").GetString());
        Assert.Equal(issued.TokenId, subject.GetProperty("jti").GetString());
        var body = payload.GetProperty("events").GetProperty(SsfReceiverClient.SessionRevoked);
        Assert.Equal("admin", body.GetProperty("initiating_entity").GetString());
        Assert.Equal("leaked in a log", body.GetProperty("reason_admin").GetProperty("en").GetString());
        Assert.Equal("token", body.GetProperty("broker_revocation").GetProperty("kind").GetString());

        // Acknowledged: never sent again.
        var after = await receiver.PollAsync(streamId);
        Assert.Empty(after.Body.GetProperty("sets").EnumerateObject());
        Assert.False(after.Body.GetProperty("moreAvailable").GetBoolean());
    }

    [Fact]
    public async Task Each_selector_maps_to_its_documented_subject()
    {
        using var receiver = Receiver("api-subjects");
        var streamId = (await receiver.CreatePollStreamAsync()).StreamId;
        await _a.RevokeAsync(
            "subject mapping",
            new RevocationSelector { TaskId = "ssf-task" },
            new RevocationSelector { TaskPhase = new Broker.V1.TaskPhaseTarget { TaskId = "ssf-phase", Phase = Broker.V1.Phase.Execution } },
            new RevocationSelector { Agent = "spiffe://example.org/agents/rogue" },
            new RevocationSelector { TrustDomain = "partner.example" });

        var payloads = await RevocationsAsync(receiver, streamId, "api-subjects", p => p.Count >= 5);

        var byKind = payloads.ToDictionary(p => p.GetProperty("events").GetProperty(SsfReceiverClient.SessionRevoked).GetProperty("broker_revocation").GetProperty("kind").GetString()!);
        Assert.Equal(["agent", "issued_before", "task", "task_phase", "trust_domain"], byKind.Keys.Order().ToArray());
        Assert.Equal(_a.Host.Issuer, byKind["issued_before"].GetProperty("sub_id").GetProperty("tenant").GetProperty("uri").GetString());
        Assert.Equal("ssf-task", byKind["task"].GetProperty("sub_id").GetProperty("session").GetProperty("id").GetString());
        Assert.Equal("complex", byKind["task"].GetProperty("sub_id").GetProperty("format").GetString());
        var phase = byKind["task_phase"].GetProperty("events").GetProperty(SsfReceiverClient.SessionRevoked).GetProperty("broker_revocation");
        Assert.Equal("execution", phase.GetProperty("phase").GetString());
        Assert.True(phase.GetProperty("issued_before").GetInt64() > 0);
        var user = byKind["agent"].GetProperty("sub_id").GetProperty("user");
        Assert.Equal("iss_sub", user.GetProperty("format").GetString());
        Assert.Equal("spiffe://example.org/agents/rogue", user.GetProperty("sub").GetString());
        Assert.Equal("spiffe://partner.example", byKind["trust_domain"].GetProperty("sub_id").GetProperty("tenant").GetProperty("uri").GetString());
    }

    [Fact]
    public async Task A_new_stream_first_receives_the_revocations_already_in_force()
    {
        await _a.RevokeAsync("before the stream", new RevocationSelector { TaskId = "ssf-earlier" });
        using var receiver = Receiver("api-late");
        var streamId = (await receiver.CreatePollStreamAsync()).StreamId;

        var tasks = new List<string>();
        foreach (var (_, set) in await receiver.CollectAsync(streamId, 2, TimeSpan.FromSeconds(5)))
        {
            var revocation = (await SsfReceiverClient.VerifyAsync(_a.Host.Issuer, "api-late", set)).GetProperty("events").GetProperty(SsfReceiverClient.SessionRevoked).GetProperty("broker_revocation");
            if (revocation.TryGetProperty("task_id", out var task))
            {
                tasks.Add(task.GetString()!);
            }
        }

        Assert.Contains("ssf-earlier", tasks);
    }

    [Fact]
    public async Task One_receiver_can_neither_see_nor_change_nor_poll_another_receivers_stream()
    {
        using var owner = Receiver("api-owner");
        using var other = Receiver("api-other");
        var streamId = (await owner.CreatePollStreamAsync()).StreamId;
        await _a.RevokeAsync("private", new RevocationSelector { TaskId = "ssf-private" });
        await Poll.UntilAsync(() => Pending(streamId) > 0, "the revocation is queued on the owner's stream");

        Assert.Equal(HttpStatusCode.NotFound, (await other.GetAsync(streamId)).Status);
        Assert.Equal(0, (await other.GetAsync()).Body.GetArrayLength());
        Assert.Equal(HttpStatusCode.NotFound, (await other.PollAsync(streamId)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await other.PatchAsync(new { stream_id = streamId, description = "mine now" })).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await other.VerifyAsync(streamId, "x")).Status);
        var deleted = await other.DeleteAsync(streamId);
        Assert.Equal(HttpStatusCode.NotFound, deleted.Status);
        Assert.Equal("not_found", deleted.Err);

        // The owner's stream, queue and configuration are untouched.
        var mine = await owner.GetAsync(streamId);
        Assert.Equal(HttpStatusCode.OK, mine.Status);
        Assert.False(mine.Body.TryGetProperty("description", out _));
        Assert.Single((await owner.GetAsync()).Body.EnumerateArray());
        Assert.NotEmpty((await owner.PollAsync(streamId)).Body.GetProperty("sets").EnumerateObject());
    }

    [Fact]
    public async Task Unacknowledged_sets_survive_a_node_restart_and_any_node_serves_them()
    {
        var b = await PeerAsync();
        using var atB = Receiver("api-durable", b.HttpAddress);
        var streamId = (await atB.CreatePollStreamAsync()).StreamId;
        await _a.RevokeAsync("durable", new RevocationSelector { TaskId = "ssf-durable" });
        await Poll.UntilAsync(() => Pending(streamId) > 0, "the revocation is queued");

        var first = (await atB.PollAsync(streamId)).Body.GetProperty("sets").EnumerateObject().Select(s => s.Name).ToList();
        Assert.NotEmpty(first);

        // Node B goes away before the receiver acknowledged; a node started after it serves the same SETs.
        _peers.Remove(b);
        await b.DisposeAsync();
        var c = await PeerAsync();
        using var atC = Receiver("api-durable", c.HttpAddress);
        var again = await atC.PollAsync(streamId);
        Assert.Equal(first, again.Body.GetProperty("sets").EnumerateObject().Select(s => s.Name).ToList());

        Assert.Equal(HttpStatusCode.OK, (await atC.PollAsync(streamId, ack: first, maxEvents: 0)).Status);
        Assert.Empty((await atC.PollAsync(streamId)).Body.GetProperty("sets").EnumerateObject());
        Assert.Equal(0, Pending(streamId));
    }

    [Fact]
    public async Task Two_nodes_queue_each_revocation_exactly_once_per_stream()
    {
        var b = await PeerAsync();
        using var receiver = Receiver("api-once");
        var streamId = (await receiver.CreatePollStreamAsync()).StreamId;
        var emitters = new[] { _a.Host.Services.GetRequiredService<SsfEmitter>(), b.Services.GetRequiredService<SsfEmitter>() };

        var revoked = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            var response = await _a.RevokeAsync("once", new RevocationSelector { TaskId = $"ssf-once-{i}" });
            revoked.Add(response.Revocations.Single().Id);

            // Both nodes offer the same entries at the same moment, besides their own background passes.
            await Poll.UntilAsync(() => b.Services.GetRequiredService<Broker.Core.Revocation.RevocationFeed>().Cursor == revoked[^1], "node B read the revocation");
            await Task.WhenAll(emitters.Select(e => e.EmitAsync(CancellationToken.None)));
        }

        var txns = new List<string>();
        foreach (var (_, set) in await receiver.CollectAsync(streamId, revoked.Count + 1, TimeSpan.FromSeconds(3)))
        {
            txns.Add((await SsfReceiverClient.VerifyAsync(_a.Host.Issuer, "api-once", set)).GetProperty("txn").GetString()!);
        }

        foreach (var id in revoked)
        {
            Assert.Single(txns, t => t == id);
        }

        Assert.Equal(txns.Count, txns.Distinct().Count());
    }

    [Fact]
    public async Task A_verification_event_carries_the_receivers_state()
    {
        using var receiver = Receiver("api-verify");
        var streamId = (await receiver.CreatePollStreamAsync()).StreamId;

        Assert.Equal(HttpStatusCode.NoContent, (await receiver.VerifyAsync(streamId, "state-42")).Status);

        var verification = (await Task.WhenAll((await receiver.CollectAsync(streamId, 1)).Select(s => SsfReceiverClient.VerifyAsync(_a.Host.Issuer, "api-verify", s.Set))))
            .Single(p => p.GetProperty("events").TryGetProperty(SsfReceiverClient.Verification, out _));
        Assert.Equal("state-42", verification.GetProperty("events").GetProperty(SsfReceiverClient.Verification).GetProperty("state").GetString());
        Assert.Equal("opaque", verification.GetProperty("sub_id").GetProperty("format").GetString());
        Assert.Equal(streamId, verification.GetProperty("sub_id").GetProperty("id").GetString());
    }

    [Fact]
    public async Task Creating_and_deleting_a_stream_are_audited_and_deleting_drops_its_queue()
    {
        using var receiver = Receiver("api-audited");
        var streamId = (await receiver.CreatePollStreamAsync()).StreamId;
        await _a.RevokeAsync("queued", new RevocationSelector { TaskId = "ssf-audited" });
        await Poll.UntilAsync(() => Pending(streamId) > 0, "the revocation is queued");

        Assert.Equal(HttpStatusCode.NoContent, (await receiver.DeleteAsync(streamId)).Status);

        Assert.Equal(HttpStatusCode.NotFound, (await receiver.GetAsync(streamId)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await receiver.PollAsync(streamId)).Status);
        Assert.Equal(0, Pending(streamId));
        var lines = await _a.AuditLinesAsync();
        var created = Assert.Single(lines, l => l.Contains("\"ssf.stream_created\"", StringComparison.Ordinal) && l.Contains(streamId, StringComparison.Ordinal));
        Assert.Contains("\"event_id\":2420", created, StringComparison.Ordinal);
        Assert.Contains("api-audited", created, StringComparison.Ordinal);
        var deleted = Assert.Single(lines, l => l.Contains("\"ssf.stream_deleted\"", StringComparison.Ordinal) && l.Contains(streamId, StringComparison.Ordinal));
        Assert.Contains("\"event_id\":2421", deleted, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_receiver_holds_at_most_its_stream_cap_and_gets_409_past_it()
    {
        using var receiver = Receiver("api-greedy");
        for (var i = 0; i < new SsfTransmitterOptions().MaxStreamsPerReceiver; i++)
        {
            Assert.Equal(HttpStatusCode.Created, (await receiver.CreatePollStreamAsync()).Status);
        }

        var refused = await receiver.CreatePollStreamAsync();
        Assert.Equal(HttpStatusCode.Conflict, refused.Status);
        Assert.Equal("conflict", refused.Err);
        Assert.Equal(new SsfTransmitterOptions().MaxStreamsPerReceiver, (await receiver.GetAsync()).Body.GetArrayLength());
    }

    [Theory]
    [InlineData("""{"delivery":{"method":"urn:example:carrier-pigeon"}}""", "method")]
    [InlineData("""{"delivery":{"method":"urn:ietf:rfc:8935"}}""", "endpoint_url")]
    [InlineData("""{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"http://rs.example/events"}}""", "https")]
    [InlineData("""{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"https://user:pw@rs.example/events"}}""", "user info")]
    [InlineData("""{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"https://rs.example/events","authorization_header":"Bearer \u0007"}}""", "printable")]
    [InlineData("""{"delivery":{"method":"urn:ietf:rfc:8936","endpoint_url":"https://rs.example/poll"}}""", "supplied by Broker")]
    [InlineData("""{"delivery":"poll"}""", "delivery")]
    [InlineData("""{"events_requested":"all"}""", "events_requested")]
    [InlineData("""{"description":42}""", "description")]
    [InlineData("""[1,2]""", "JSON object")]
    [InlineData("""{"delivery":""", "not valid JSON")]
    public async Task A_bad_stream_configuration_is_refused_400_and_creates_nothing(string body, string says)
    {
        using var receiver = Receiver("api-bad");

        var answer = await receiver.SendAsync(HttpMethod.Post, "/ssf/streams", body);

        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal("invalid_request", answer.Err);
        Assert.Contains(says, answer["description"], StringComparison.Ordinal);
        Assert.Equal(0, (await receiver.GetAsync()).Body.GetArrayLength());
    }

    [Theory]
    [InlineData("""{"maxEvents":-1}""", "maxEvents")]
    [InlineData("""{"maxEvents":"ten"}""", "maxEvents")]
    [InlineData("""{"ack":"jti-1"}""", "ack")]
    [InlineData("""{"returnImmediately":"yes"}""", "returnImmediately")]
    [InlineData("""{"setErrs":[]}""", "setErrs")]
    public async Task A_bad_poll_is_refused_400(string body, string says)
    {
        using var receiver = Receiver("api-bad-poll");
        var streamId = (await receiver.CreatePollStreamAsync()).StreamId;

        var answer = await receiver.SendAsync(HttpMethod.Post, "/ssf/poll/" + streamId, body);

        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal("invalid_request", answer.Err);
        Assert.Contains(says, answer["description"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Callers_without_a_resource_server_credential_are_refused_401_or_403()
    {
        using var operatorToken = new SsfReceiverClient(_a.Host.HttpAddress, () => _a.Operators.Token("alice", ["responder"]));
        using var noRole = new SsfReceiverClient(_a.Host.HttpAddress, () => _a.Operators.Token("api-norole", ["reader"], ResourceServerTokenHandler.Audience));
        using var agentToken = new SsfReceiverClient(_a.Host.HttpAddress, () => null);
        var agent = (await _a.Client.IssueCredentialAsync(_a.Request(task: "ssf-agent"))).AccessToken;

        Assert.Equal(HttpStatusCode.Unauthorized, (await operatorToken.CreatePollStreamAsync()).Status);
        var forbidden = await noRole.CreatePollStreamAsync();
        Assert.Equal(HttpStatusCode.Forbidden, forbidden.Status);
        Assert.Equal("access_denied", forbidden.Err);
        using var withAgentToken = new SsfReceiverClient(_a.Host.HttpAddress, () => agent);
        Assert.Equal(HttpStatusCode.Unauthorized, (await withAgentToken.CreatePollStreamAsync()).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await agentToken.PollAsync("any")).Status);
    }

    [Fact]
    public async Task A_full_queue_drops_its_oldest_sets_first()
    {
        // A cluster of its own: in the shared one the other node (default cap) could queue first.
        var prefix = RedisFixture.NewPrefix();
        await using var small = await BrokerScenario.StartAsync(redis.Server.Configuration, redisPrefix: prefix, settings: new Dictionary<string, string?> { ["Broker:Ssf:Transmitter:MaxQueuedEvents"] = "2" });
        using var receiver = new SsfReceiverClient(small.Host.HttpAddress, () => small.Operators.Token("api-small", [ResourceServerTokenHandler.Role], ResourceServerTokenHandler.Audience));
        var streamId = (await receiver.CreatePollStreamAsync()).StreamId;
        var emitter = small.Host.Services.GetRequiredService<SsfEmitter>();
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add((await small.RevokeAsync("overflow", new RevocationSelector { TaskId = $"ssf-full-{i}" })).Revocations.Single().Id);
        }

        await Poll.UntilAsync(() => Pending(prefix, streamId) == 2 && Cursor(prefix, streamId) == ids[^1], "the queue is full at two");
        await emitter.EmitAsync(CancellationToken.None);

        var txns = new List<string>();
        foreach (var (_, set) in (await receiver.PollAsync(streamId)).Body.GetProperty("sets").EnumerateObject().Select(s => (s.Name, s.Value.GetString()!)))
        {
            txns.Add((await SsfReceiverClient.VerifyAsync(small.Host.Issuer, "api-small", set)).GetProperty("txn").GetString()!);
        }

        Assert.Equal(2, txns.Count);
        Assert.Equal(ids[^1], txns[^1]);
        Assert.DoesNotContain(ids[0], txns);
    }

    /// <summary>Long-polls (acknowledging) and verifies each SET until <paramref name="done"/> holds for what arrived, or the bound passes.</summary>
    private async Task<List<JsonElement>> RevocationsAsync(SsfReceiverClient receiver, string streamId, string audience, Func<List<JsonElement>, bool> done)
    {
        var payloads = new List<JsonElement>();
        var ack = new List<string>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!done(payloads) && DateTime.UtcNow < deadline)
        {
            var answer = await receiver.PollAsync(streamId, ack, returnImmediately: false);
            Assert.Equal(HttpStatusCode.OK, answer.Status);
            ack = [];
            foreach (var set in answer.Body.GetProperty("sets").EnumerateObject())
            {
                var payload = await SsfReceiverClient.VerifyAsync(_a.Host.Issuer, audience, set.Value.GetString()!);
                Assert.Equal(set.Name, payload.GetProperty("jti").GetString());
                payloads.Add(payload);
                ack.Add(set.Name);
            }
        }

        Assert.True(done(payloads), $"not all expected SETs arrived: {payloads.Count} did");
        await receiver.PollAsync(streamId, ack, maxEvents: 0);
        return payloads;
    }

    private long Pending(string streamId) => Pending(_prefix, streamId);

    private long Pending(string prefix, string streamId) => redis.Connection.GetDatabase().StreamLength(new Broker.Redis.RedisKeys(prefix).SsfQueue(streamId));

    private string? Cursor(string streamId) => Cursor(_prefix, streamId);

    private string? Cursor(string prefix, string streamId) => redis.Connection.GetDatabase().HashGet(new Broker.Redis.RedisKeys(prefix).SsfStream(streamId), "cur");
}
