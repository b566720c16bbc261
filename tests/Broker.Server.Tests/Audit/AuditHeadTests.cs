using System.Security.Cryptography;
using Broker.Core.Audit;
using Broker.Server.Tests.Infrastructure;
using Broker.V1;

namespace Broker.Server.Tests.Audit;

/// <summary>
/// Each node publishes its signed chain head to Redis as it advances. Deleting the node's newest
/// segment with its checkpoint leaves a log that verifies on its own, but not against the head
/// an auditor fetches from the fleet, and the node refuses to start on it.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class AuditHeadTests(RedisFixture redis) : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(15);
    private readonly string _prefix = RedisFixture.NewPrefix();
    private readonly string _work = Directory.CreateTempSubdirectory("broker-heads-").FullName;
    private BrokerScenario _cluster = null!;

    private string AuditPath => Path.Combine(_work, "audit");

    private string KeyFile => Path.Combine(_work, "audit-checkpoint.pem");

    public async Task InitializeAsync()
    {
        _cluster = await BrokerScenario.StartAsync(redis.Server.Configuration, redisPrefix: _prefix);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        await File.WriteAllTextAsync(KeyFile, key.ExportPkcs8PrivateKeyPem());
    }

    public async Task DisposeAsync()
    {
        await _cluster.DisposeAsync();
        Directory.Delete(_work, recursive: true);
    }

    private Task<BrokerTestHost> StartNodeAsync() => BrokerTestHost.StartAsync(new BrokerTestHostOptions
    {
        PolicyPath = _cluster.PolicyPath,
        Audience = BrokerScenario.Audience,
        RedisConfiguration = redis.Server.Configuration,
        RedisKeyPrefix = _prefix,
        OperatorAuthority = _cluster.Operators.Issuer,
        SigningKeyFiles = [_cluster.SigningKeyFile],
        Issuer = _cluster.Host.Issuer,
        AuditPath = AuditPath,
        Settings = new Dictionary<string, string?>
        {
            ["Broker:Audit:CheckpointKeyPath"] = KeyFile,
            ["Broker:Audit:SegmentMaxBytes"] = "4096",
        },
    });

    private async Task<List<AuditHead>> FetchHeadsAsync() =>
        (await new AuditService.AuditServiceClient(_cluster.Channel).GetHeadsAsync(new GetAuditHeadsRequest(), _cluster.As("ada", "auditor")))
            .Heads.Select(h => AuditHeads.TryParse(h.Json)!).ToList();

    [Fact]
    public async Task Deleting_the_newest_segment_with_its_checkpoint_is_caught_by_the_head_in_Redis()
    {
        var node = await StartNodeAsync();
        using (var channel = node.CreateChannel())
        {
            var client = new CredentialService.CredentialServiceClient(channel);
            for (var i = 0; i < 12; i++)
            {
                await client.IssueCredentialAsync(_cluster.Request(_cluster.Svid(), task: $"head-{i}"));
            }
        }

        await node.DisposeAsync();
        var nodeId = File.ReadAllText(Path.Combine(AuditPath, "node-id")).Trim();
        var segments = AuditFiles.Segments(AuditPath, nodeId);
        Assert.True(segments.Count >= 3, $"{segments.Count} segments");
        var lastSeq = AuditReader.ReadAll([AuditPath]).Max(r => r.Event.Seq!.Value);

        // The stop's final head reaches Redis; any auditor can fetch it from any node.
        var head = (await FetchHeadsAsync()).Single(h => h.Node == nodeId);
        Assert.Equal(lastSeq, head.Seq);
        Assert.True(AuditHeads.SignatureValid(head, null));

        File.Delete(segments[^1].Path);
        File.Delete(Path.Combine(AuditPath, AuditChain.CheckpointFileName(nodeId, segments[^1].Number)));
        Assert.True(AuditVerifier.Verify([AuditPath]).Ok);

        // The fleet's heads include the other node's, whose log is elsewhere: check this node's.
        var result = AuditVerifier.Verify([AuditPath], new AuditVerifyOptions { ExpectedHeads = (await FetchHeadsAsync()).Where(h => h.Node == nodeId).ToList() });
        var problem = Assert.Single(result.Problems);
        Assert.Equal(segments[^2].Path, problem.File);
        Assert.Contains($"signed head is at seq {lastSeq}", problem.What, StringComparison.Ordinal);

        var refused = await Assert.ThrowsAsync<AuditTamperedException>(StartNodeAsync);
        Assert.Contains($"signed head is at seq {lastSeq}", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_head_in_Redis_follows_the_chain_as_it_advances()
    {
        await using var node = await StartNodeAsync();
        using var channel = node.CreateChannel();
        var issued = await new CredentialService.CredentialServiceClient(channel).IssueCredentialAsync(_cluster.Request(_cluster.Svid(), task: "advance"));
        var record = AuditReader.ReadAll([AuditPath]).Single(r => r.Event.TokenId == issued.TokenId && r.Event.EventId == 2000);

        using var deadline = new CancellationTokenSource(Bound);
        while (true)
        {
            var head = (await FetchHeadsAsync()).SingleOrDefault(h => h.Node == record.Event.Node);
            if (head is not null && head.Seq >= record.Event.Seq)
            {
                Assert.True(AuditVerifier.Verify([AuditPath], new AuditVerifyOptions { ExpectedHeads = [head] }).Ok);
                return;
            }

            await Task.Delay(20, deadline.Token);
        }
    }
}
