using Broker.Server.Tests.Infrastructure;
using Broker.V1;
using Grpc.Core;

namespace Broker.Server.Tests.Revocation;

/// <summary>Break glass: a freeze at one node stops issuance on every node; admin and revocation keep working.</summary>
[Collection(RedisCollection.Name)]
public sealed class FreezeTests(RedisFixture redis) : IAsyncLifetime
{
    private readonly string _prefix = RedisFixture.NewPrefix();
    private BrokerScenario _a = null!;
    private BrokerTestHost _b = null!;
    private Grpc.Net.Client.GrpcChannel _bChannel = null!;

    public async Task InitializeAsync()
    {
        _a = await BrokerScenario.StartAsync(redis.Server.Configuration, redisPrefix: _prefix);
        _b = await _a.StartPeerAsync(redis.Server.Configuration, _prefix);
        _bChannel = _b.CreateChannel();
    }

    public async Task DisposeAsync()
    {
        _bChannel.Dispose();
        await _b.DisposeAsync();
        await _a.DisposeAsync();
    }

    [Fact]
    public async Task Freeze_at_one_node_refuses_issuance_everywhere_until_unfrozen()
    {
        var credentialsB = new CredentialService.CredentialServiceClient(_bChannel);
        var revocationB = new RevocationService.RevocationServiceClient(_bChannel);
        var before = await _a.Client.IssueCredentialAsync(_a.Request(task: "pre-freeze"));

        var frozen = await _a.Admin.FreezeAsync(new FreezeRequest { Reason = "suspected key theft" }, _a.As("alice", "responder"));

        Assert.True(frozen.Frozen);
        Assert.Equal("operator:alice", frozen.Actor);
        var refusedAtA = await _a.RefusedAsync(_a.Request(task: "during-a"));
        Assert.Equal(StatusCode.Unavailable, refusedAtA.Status);
        Assert.Equal("ISSUANCE_FROZEN", refusedAtA.Reason);
        await EventuallyAsync(async () =>
        {
            try
            {
                await credentialsB.IssueCredentialAsync(_a.Request(task: "during-b"));
                return false;
            }
            catch (RpcException ex) when (Broker.Client.BrokerRefusal.From(ex).Reason == "ISSUANCE_FROZEN")
            {
                return true;
            }
        });

        // Responders keep their tools while frozen.
        Assert.True((await revocationB.IntrospectAsync(new IntrospectRequest { Token = before.AccessToken })).Active);
        await _a.RevokeAsync("contain", new Broker.V1.RevocationSelector { TokenId = before.TokenId });

        var unfrozen = await _a.Admin.UnfreezeAsync(new UnfreezeRequest { Reason = "keys rotated" }, _a.As("alice", "responder"));

        Assert.False(unfrozen.Frozen);
        await EventuallyAsync(async () =>
        {
            try
            {
                await credentialsB.IssueCredentialAsync(_a.Request(task: "after"));
                return true;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
            {
                return false;
            }
        });
        var audit = await _a.AuditLinesAsync();
        Assert.Contains(audit, l => l.Contains("\"issuance.frozen\"", StringComparison.Ordinal) && l.Contains("operator:alice", StringComparison.Ordinal));
        Assert.Contains(audit, l => l.Contains("\"issuance.unfrozen\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Only_responders_can_freeze_and_a_reason_is_required()
    {
        var auditor = await Assert.ThrowsAsync<RpcException>(async () =>
            await _a.Admin.FreezeAsync(new FreezeRequest { Reason = "x" }, _a.As("carol", "auditor")));
        var noReason = await Assert.ThrowsAsync<RpcException>(async () =>
            await _a.Admin.FreezeAsync(new FreezeRequest(), _a.As("alice", "responder")));

        Assert.Equal(StatusCode.PermissionDenied, auditor.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, noReason.StatusCode);
        await _a.Client.IssueCredentialAsync(_a.Request(task: "still-open"));
    }

    private static async Task EventuallyAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            if (await condition())
            {
                return;
            }

            await Task.Delay(20);
        }

        Assert.Fail("Condition not met within 10 s.");
    }
}
