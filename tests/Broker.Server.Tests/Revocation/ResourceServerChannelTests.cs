using Broker.Client;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Broker.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Broker.Server.Tests.Revocation;

/// <summary>
/// The revocation channel (WatchRevocations, Introspect) admits authenticated resource servers
/// only, tells them selectors and times but never who revoked or why, and caps their streams.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class ResourceServerChannelTests(RedisFixture redis) : IAsyncLifetime
{
    private BrokerScenario _broker = null!;
    private GrpcChannel _anonymous = null!;

    private RevocationService.RevocationServiceClient Anonymous => new(_anonymous);

    public async Task InitializeAsync()
    {
        _broker = await BrokerScenario.StartAsync(
            redis.Server.Configuration,
            redisPrefix: RedisFixture.NewPrefix(),
            settings: new Dictionary<string, string?>
            {
                ["Broker:ResourceServers:MaxStreamsPerCaller"] = "2",
                ["Broker:ResourceServers:MaxStreams"] = "3",
            });
        _anonymous = GrpcChannel.ForAddress(_broker.Host.GrpcAddress);
    }

    public async Task DisposeAsync()
    {
        _anonymous.Dispose();
        await _broker.DisposeAsync();
    }

    private Metadata Bearer(string token) => new() { { "authorization", "Bearer " + token } };

    private Metadata AsResourceServer(string name = "orders-api") =>
        Bearer(_broker.Operators.Token(name, [ResourceServerTokenHandler.Role], ResourceServerTokenHandler.Audience));

    public static TheoryData<string, StatusCode, string> Refused => new()
    {
        { "none", StatusCode.Unauthenticated, "RESOURCE_SERVER_TOKEN_MISSING" },
        { "operator", StatusCode.Unauthenticated, "RESOURCE_SERVER_TOKEN_INVALID" },
        { "agent", StatusCode.Unauthenticated, "RESOURCE_SERVER_TOKEN_INVALID" },
        { "expired", StatusCode.Unauthenticated, "RESOURCE_SERVER_TOKEN_INVALID" },
        { "no-role", StatusCode.PermissionDenied, "RESOURCE_SERVER_ROLE_MISSING" },
    };

    private async Task<Metadata> CredentialAsync(string kind) => kind switch
    {
        "none" => [],
        // An operator token: right IdP, operator audience, even with the role name.
        "operator" => Bearer(_broker.Operators.Token("alice", ["responder", ResourceServerTokenHandler.Role])),
        // Broker's own access token for an API.
        "agent" => Bearer((await _broker.Client.IssueCredentialAsync(_broker.Request(task: "rs-agent"))).AccessToken),
        "expired" => Bearer(_broker.Operators.Token("orders-api", [ResourceServerTokenHandler.Role], ResourceServerTokenHandler.Audience, lifetime: TimeSpan.FromMinutes(1), now: DateTimeOffset.UtcNow.AddMinutes(-10))),
        _ => Bearer(_broker.Operators.Token("orders-api", ["responder"], ResourceServerTokenHandler.Audience)),
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public async Task Introspect_and_WatchRevocations_refuse_callers_that_are_not_resource_servers_without_an_audit_record_each(string kind, StatusCode status, string reason)
    {
        var token = (await _broker.Client.IssueCredentialAsync(_broker.Request(task: "rs-refused"))).AccessToken;
        var credential = await CredentialAsync(kind);
        var before = (await _broker.AuditLinesAsync()).Length;

        var introspect = await Assert.ThrowsAsync<RpcException>(async () => await Anonymous.IntrospectAsync(new IntrospectRequest { Token = token }, credential));
        var watch = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = Anonymous.WatchRevocations(new WatchRevocationsRequest(), credential);
            await call.ResponseStream.MoveNext(CancellationToken.None);
        });

        foreach (var refusal in new[] { BrokerRefusal.From(introspect), BrokerRefusal.From(watch) })
        {
            Assert.Equal(status, refusal.Status);
            Assert.Equal(reason, refusal.Reason);
        }

        Assert.Equal(before, (await _broker.AuditLinesAsync()).Length);
    }

    [Fact]
    public async Task A_resource_server_token_introspects_and_watches()
    {
        var token = (await _broker.Client.IssueCredentialAsync(_broker.Request(task: "rs-ok"))).AccessToken;

        var answer = await Anonymous.IntrospectAsync(new IntrospectRequest { Token = token }, AsResourceServer());

        Assert.True(answer.Active);
        using var call = Anonymous.WatchRevocations(new WatchRevocationsRequest(), AsResourceServer());
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
    }

    [Fact]
    public async Task The_stream_carries_selectors_and_times_but_not_who_revoked_or_why()
    {
        await _broker.RevokeAsync("INC-42: alice saw the agent exfiltrate", new Broker.V1.RevocationSelector { TaskId = "rs-secret-task" });

        using var call = Anonymous.WatchRevocations(new WatchRevocationsRequest(), AsResourceServer());
        var entries = new List<Broker.V1.Revocation>();
        while (await call.ResponseStream.MoveNext(CancellationToken.None) && call.ResponseStream.Current.KindCase == RevocationEvent.KindOneofCase.Revocation)
        {
            entries.Add(call.ResponseStream.Current.Revocation);
        }

        var entry = Assert.Single(entries, e => e.Selector.TaskId == "rs-secret-task");
        Assert.Equal("", entry.Actor);
        Assert.Equal("", entry.Reason);
        Assert.NotNull(entry.RevokedAt);
        Assert.NotNull(entry.ExpiresAt);

        // Operators still see both.
        var listed = await _broker.Admin.ListRevocationsAsync(new ListRevocationsRequest(), _broker.As("alice", "auditor"));
        Assert.Contains(listed.Revocations, r => r.Selector.TaskId == "rs-secret-task" && r.Actor == "operator:alice" && r.Reason.StartsWith("INC-42", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Concurrent_streams_are_capped_per_resource_server_and_per_node_and_a_closed_stream_frees_its_slot()
    {
        async Task<AsyncServerStreamingCall<RevocationEvent>> OpenAsync(string name)
        {
            var call = Anonymous.WatchRevocations(new WatchRevocationsRequest(), AsResourceServer(name));
            Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
            return call;
        }

        async Task<BrokerRefusal> RefusedAsync(string name) => BrokerRefusal.From(await Assert.ThrowsAsync<RpcException>(() => OpenAsync(name)));

        var first = await OpenAsync("orders-api");
        using var second = await OpenAsync("orders-api");

        var perCaller = await RefusedAsync("orders-api");
        Assert.Equal(StatusCode.ResourceExhausted, perCaller.Status);
        Assert.Equal("WATCH_STREAMS_EXHAUSTED", perCaller.Reason);
        Assert.Equal("caller", perCaller.Metadata["limit"]);

        using var third = await OpenAsync("billing-api");
        var perNode = await RefusedAsync("billing-api");
        Assert.Equal("WATCH_STREAMS_EXHAUSTED", perNode.Reason);
        Assert.Equal("node", perNode.Metadata["limit"]);

        first.Dispose();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        AsyncServerStreamingCall<RevocationEvent>? reopened = null;
        while (reopened is null)
        {
            try
            {
                reopened = await OpenAsync("billing-api");
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.ResourceExhausted && DateTime.UtcNow < deadline)
            {
                await Task.Delay(20); // the server notices the cancelled stream asynchronously
            }
        }

        reopened.Dispose();
    }
}
