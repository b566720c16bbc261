using Broker.Server.Tests.Infrastructure;
using Broker.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Broker.Server.Tests.Audit;

/// <summary>AuditService on a real node: auditors tail and query the node's own segments; nobody else can.</summary>
public sealed class AuditServiceTests : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(15);
    private BrokerScenario _broker = null!;

    private AuditService.AuditServiceClient Audit => new(_broker.Channel);

    public async Task InitializeAsync() => _broker = await BrokerScenario.StartAsync();

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Fact]
    public async Task Only_auditors_read_the_log()
    {
        await _broker.Client.IssueCredentialAsync(_broker.Request(_broker.Svid()));

        var records = await Audit.QueryAsync(new QueryAuditRequest(), _broker.As("ada", "auditor"));
        Assert.Contains(records.Records, r => r.Type == "credential.issued");

        var responder = await Assert.ThrowsAsync<RpcException>(async () => await Audit.QueryAsync(new QueryAuditRequest(), _broker.As("alice", "responder")));
        Assert.Equal(StatusCode.PermissionDenied, responder.StatusCode);
        var anonymous = await Assert.ThrowsAsync<RpcException>(async () => await Audit.QueryAsync(new QueryAuditRequest()));
        Assert.Equal(StatusCode.Unauthenticated, anonymous.StatusCode);

        foreach (var (headers, status) in new[] { (_broker.As("alice", "responder"), StatusCode.PermissionDenied), (new Metadata(), StatusCode.Unauthenticated) })
        {
            using var tail = Audit.Tail(new TailAuditRequest { Lines = 5 }, headers);
            var refused = await Assert.ThrowsAsync<RpcException>(async () => await tail.ResponseStream.MoveNext(CancellationToken.None));
            Assert.Equal(status, refused.StatusCode);
        }
    }

    [Fact]
    public async Task Query_filters_by_task_token_agent_actor_type_time_and_limit()
    {
        var a = await _broker.Client.IssueCredentialAsync(_broker.Request(_broker.Svid(), task: "audit-task-a"));
        var b = await _broker.Client.IssueCredentialAsync(_broker.Request(_broker.Svid("/agents/reviewer"), task: "audit-task-b"));
        await _broker.RevokeAsync("incident 7", new RevocationSelector { TokenId = a.TokenId });
        var auditor = _broker.As("ada", "auditor");

        async Task<List<AuditRecord>> Query(QueryAuditRequest request) => [.. (await Audit.QueryAsync(request, auditor)).Records];

        var taskB = await Query(new QueryAuditRequest { TaskId = "audit-task-b" });
        Assert.NotEmpty(taskB);
        Assert.All(taskB, r => Assert.Equal("audit-task-b", r.TaskId));
        Assert.Contains(taskB, r => r.Type == "credential.issued" && r.TokenId == b.TokenId);

        var tokenA = await Query(new QueryAuditRequest { TokenId = a.TokenId });
        Assert.Contains(tokenA, r => r.Type == "credential.issued");
        Assert.Contains(tokenA, r => r.Type == "credential.revoked" && r.Actor == "operator:alice");
        Assert.DoesNotContain(tokenA, r => r.TokenId == b.TokenId);

        var reviewer = await Query(new QueryAuditRequest { Agent = _broker.Trust.SpiffeId("/agents/reviewer"), Type = "credential.issued" });
        Assert.Equal([b.TokenId], reviewer.Select(r => r.TokenId));

        var byAlice = await Query(new QueryAuditRequest { Actor = "operator:alice" });
        Assert.Equal(["credential.revoked"], byAlice.Select(r => r.Type));
        Assert.Contains("\"actor\":\"operator:alice\"", byAlice[0].Json, StringComparison.Ordinal);

        var band = await Query(new QueryAuditRequest { Type = "4" });
        Assert.All(band, r => Assert.StartsWith("4", r.EventId.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
        Assert.Contains(band, r => r.Type == "credential.revoked");

        Assert.Empty(await Query(new QueryAuditRequest { Since = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddHours(1)) }));
        Assert.Empty(await Query(new QueryAuditRequest { Until = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddHours(-1)) }));

        var newest = await Query(new QueryAuditRequest { Type = "credential.issued", Limit = 1 });
        Assert.Equal([b.TokenId], newest.Select(r => r.TokenId));
    }

    [Fact]
    public async Task Tail_sends_a_nodes_records_in_seq_order_even_when_its_clock_stepped_back()
    {
        var sink = _broker.Host.Services.GetRequiredService<Broker.Core.Audit.IAuditSink>();
        var now = DateTimeOffset.UtcNow;
        foreach (var (task, at) in new[] { ("clock-1", now), ("clock-2", now.AddMinutes(-5)), ("clock-3", now.AddMinutes(-10)) })
        {
            await sink.AppendAsync(
                new Broker.Core.Audit.AuditEvent
                {
                    EventId = Broker.Core.Audit.AuditEventTypes.TaskEnded.Id,
                    Type = Broker.Core.Audit.AuditEventTypes.TaskEnded.Name,
                    Time = at,
                    CorrelationId = task,
                    Outcome = Broker.Core.Audit.AuditOutcomes.Success,
                    TaskId = task,
                },
                CancellationToken.None);
        }

        using var tail = Audit.Tail(new TailAuditRequest { Lines = 3 }, _broker.As("ada", "auditor"));
        var records = new List<AuditRecord>();
        await foreach (var record in tail.ResponseStream.ReadAllAsync())
        {
            records.Add(record);
        }

        Assert.Equal(["clock-1", "clock-2", "clock-3"], records.Select(r => r.TaskId));
        Assert.Equal(records.Select(r => r.Seq).Order(), records.Select(r => r.Seq));
    }

    [Fact]
    public async Task Tail_sends_the_newest_records_then_follows_new_ones()
    {
        await _broker.Client.IssueCredentialAsync(_broker.Request(_broker.Svid(), task: "tail-1"));
        await _broker.Client.IssueCredentialAsync(_broker.Request(_broker.Svid(), task: "tail-2"));
        using var timeout = new CancellationTokenSource(Bound);
        using var tail = Audit.Tail(new TailAuditRequest { Lines = 2, Follow = true }, _broker.As("ada", "auditor"), cancellationToken: timeout.Token);

        var first = new List<AuditRecord>();
        for (var i = 0; i < 2; i++)
        {
            Assert.True(await tail.ResponseStream.MoveNext(timeout.Token));
            first.Add(tail.ResponseStream.Current);
        }

        Assert.True(first[0].Seq < first[1].Seq);
        Assert.Equal("tail-2", first[^1].TaskId);

        var next = await _broker.Client.IssueCredentialAsync(_broker.Request(_broker.Svid(), task: "tail-3"));
        while (await tail.ResponseStream.MoveNext(timeout.Token))
        {
            var record = tail.ResponseStream.Current;
            Assert.True(record.Seq > first[^1].Seq);
            if (record.Type == "credential.issued")
            {
                Assert.Equal(next.TokenId, record.TokenId);
                return;
            }
        }

        Assert.Fail("the tail ended before the new record arrived");
    }
}
