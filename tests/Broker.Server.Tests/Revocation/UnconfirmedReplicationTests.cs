using Broker.Server.Tests.Infrastructure;
using Broker.V1;
using Grpc.Core;

namespace Broker.Server.Tests.Revocation;

/// <summary>
/// A node that must wait for one replica, on a Redis that has none: a revocation reaches the
/// primary (so it is in force everywhere) but is never confirmed. The responder hears
/// UNAVAILABLE, never OK, and the audit log still records the revocation, marked unconfirmed.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class UnconfirmedReplicationTests(RedisFixture redis) : IAsyncLifetime
{
    private readonly string _prefix = RedisFixture.NewPrefix();
    private BrokerScenario _a = null!;
    private BrokerTestHost _strict = null!;
    private Grpc.Net.Client.GrpcChannel _strictChannel = null!;

    public async Task InitializeAsync()
    {
        _a = await BrokerScenario.StartAsync(redis.Server.Configuration, redisPrefix: _prefix);
        _strict = await _a.StartPeerAsync(redis.Server.Configuration, _prefix, node => node with
        {
            Settings = new Dictionary<string, string?> { ["Broker:RevocationMinReplicas"] = "1" },
        });
        _strictChannel = _strict.CreateChannel();
    }

    public async Task DisposeAsync()
    {
        _strictChannel.Dispose();
        await _strict.DisposeAsync();
        await _a.DisposeAsync();
    }

    [Fact]
    public async Task An_unconfirmed_revocation_is_in_force_audited_and_never_reported_done()
    {
        var issued = await _a.Client.IssueCredentialAsync(_a.Request(task: "unconfirmed"));
        var admin = new AdminService.AdminServiceClient(_strictChannel);

        var refused = await Assert.ThrowsAsync<RpcException>(async () => await admin.RevokeAsync(
            new RevokeRequest { Reason = "contain", Selectors = { new Broker.V1.RevocationSelector { TokenId = issued.TokenId } } },
            _a.As("alice", "responder")));

        Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
        Assert.Equal("STATE_UNAVAILABLE", Broker.Client.BrokerRefusal.From(refused).Reason);
        Assert.Contains("in force", refused.Status.Detail, StringComparison.Ordinal);

        // In force: the other node refuses the token as soon as it reads the log.
        var introspection = new RevocationService.RevocationServiceClient(_a.Channel);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while ((await introspection.IntrospectAsync(new IntrospectRequest { Token = issued.AccessToken })).Active && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.False((await introspection.IntrospectAsync(new IntrospectRequest { Token = issued.AccessToken })).Active);

        // Audited where it was made, marked as unconfirmed.
        var audit = string.Join('\n', Broker.Core.Audit.AuditFiles.All(_strict.AuditPath).Select(f => ReadShared(f.Path)));
        Assert.Contains(audit.Split('\n'), line => line.Contains("\"credential.revoked\"", StringComparison.Ordinal)
            && line.Contains(issued.TokenId, StringComparison.Ordinal)
            && line.Contains("replication unconfirmed", StringComparison.Ordinal));
    }

    private static string ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
