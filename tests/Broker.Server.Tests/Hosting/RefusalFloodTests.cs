using System.Net;
using Broker.Client;
using Broker.Core.Audit;
using Broker.Core.Refusals;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Broker.V1;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Broker.Server.Tests.Hosting;

/// <summary>
/// A real node on Kestrel flooded with bad proofs from one address (127.0.0.2) while a good agent
/// on another (127.0.0.1) keeps asking for tokens: the good agent is never limited, the flooder
/// hears RATE_LIMITED past its budget, and the audit log grows by the budget plus one record.
/// </summary>
public sealed class RefusalFloodTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int Budget = 5;
    private const int Flood = 300;
    private const int GoodCalls = 40;
    private static readonly IPAddress Flooder = IPAddress.Parse("127.0.0.2");

    private BrokerScenario _broker = null!;

    public async Task InitializeAsync() => _broker = await BrokerScenario.StartAsync(settings: RefusalBudgetSettings.Of(Budget));

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Fact]
    public async Task A_flood_of_bad_proofs_from_one_peer_neither_starves_a_good_agent_nor_grows_the_audit_log_unbounded()
    {
        // Same key id as the trust domain's, different key: every flood proof fails its signature check.
        using var forger = new TestTrustDomain("example.org", _broker.Trust.KeyId);
        using var channel = ChannelFrom(Flooder);
        var flooder = new CredentialService.CredentialServiceClient(channel);
        var before = AuditReader.ReadAll([_broker.Host.AuditPath]).Count;

        var next = 0;
        var flood = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            var refusals = new List<BrokerRefusal>();
            while (Interlocked.Increment(ref next) <= Flood)
            {
                var bad = forger.MintSvid(_broker.Trust.SpiffeId("/agents/planner"), BrokerScenario.Audience, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5));
                var ex = await Assert.ThrowsAsync<RpcException>(async () => await flooder.IssueCredentialAsync(_broker.Request(bad)));
                refusals.Add(BrokerRefusal.From(ex));
            }

            return refusals;
        })).ToArray();

        var good = new List<IssueCredentialResponse>();
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        for (var i = 0; i < GoodCalls; i++)
        {
            good.Add(await _broker.Client.IssueCredentialAsync(_broker.Request(task: "good-" + i)));
        }

        var goodElapsed = System.Diagnostics.Stopwatch.GetElapsedTime(started);
        var refused = (await Task.WhenAll(flood)).SelectMany(r => r).ToList();
        output.WriteLine($"good agent: {GoodCalls} tokens in {goodElapsed.TotalMilliseconds:F0} ms while {Flood} bad proofs were refused");

        // The good agent got every token it asked for.
        Assert.Equal(GoodCalls, good.Count(g => g.AccessToken.Length > 0));

        // The flooder: its budget refused with the real reason, the rest RATE_LIMITED.
        var limited = refused.Where(r => r.Reason == "RATE_LIMITED").ToList();
        Assert.Equal(Flood, refused.Count);
        Assert.Equal(Budget, refused.Count(r => r.Reason == "ATTESTATION_SIGNATURE_INVALID"));
        Assert.Equal(Flood - Budget, limited.Count);
        Assert.All(limited, r =>
        {
            Assert.Equal(StatusCode.ResourceExhausted, r.Status);
            Assert.True(int.Parse(r.Metadata[RefusalAuditor.RetryAfterMetadata], System.Globalization.CultureInfo.InvariantCulture) > 0);
        });

        await _broker.Host.Services.GetRequiredService<RefusalAuditor>().FlushAsync();
        var written = AuditReader.ReadAll([_broker.Host.AuditPath]).Skip(before).Select(r => r.Event).ToList();
        var fromFlooder = written.Where(e => e.Peer is { } peer && (peer == "127.0.0.2" || peer.StartsWith("ipv4:127.0.0.2:", StringComparison.Ordinal))).ToList();

        // Budget records one each, then aggregated records standing for everything past it: once
        // the budget is spent, proofs are refused unchecked (RATE_LIMITED); the few already being
        // checked when it ran out are counted under their real reason.
        Assert.Equal(Budget, fromFlooder.Count(e => e.EventId == AuditEventTypes.AttestationRefused.Id && e.Reason == "ATTESTATION_SIGNATURE_INVALID"));
        var aggregated = fromFlooder.Where(e => e.EventId == AuditEventTypes.RefusalsAggregated.Id).ToList();
        Assert.InRange(aggregated.Count, 1, 2);
        Assert.Equal(Budget + aggregated.Count, fromFlooder.Count);
        Assert.Equal(Flood - Budget, aggregated.Sum(a => a.Count));
        Assert.Contains(aggregated, a => a.Reason == "RATE_LIMITED");
        Assert.All(aggregated, a =>
        {
            Assert.Contains(a.Reason, new[] { "RATE_LIMITED", "ATTESTATION_SIGNATURE_INVALID" });
            Assert.Equal("127.0.0.2", a.Peer);
            Assert.Equal(RefusalDoors.Attestation, a.Detail);
            Assert.True(a.FirstAt <= a.LastAt);
        });

        // Nothing else was written for the flood: the rest is the good agent's issuance.
        Assert.Equal(GoodCalls, written.Count(e => e.EventId == AuditEventTypes.CredentialIssued.Id));
        Assert.Equal(fromFlooder.Count + GoodCalls, written.Count);
    }

    /// <summary>
    /// Past its budget, an address gets no more signature checks: even a good proof never seen
    /// before is refused unchecked until the budget refills, while a proof this node validated
    /// earlier (an agent reusing its SVID) is still served from the cache at that address.
    /// </summary>
    [Fact]
    public async Task Past_its_budget_an_address_gets_no_signature_checks_but_a_proof_validated_before_still_attests()
    {
        using var forger = new TestTrustDomain("example.org", _broker.Trust.KeyId);
        using var channel = ChannelFrom(Flooder);
        var fromFlooder = new CredentialService.CredentialServiceClient(channel);
        var reused = _broker.Svid();
        await _broker.Client.IssueCredentialAsync(_broker.Request(reused, task: "reused"));

        for (var i = 0; i < Budget; i++)
        {
            var bad = forger.MintSvid(_broker.Trust.SpiffeId("/agents/planner"), BrokerScenario.Audience, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5));
            var ex = await Assert.ThrowsAsync<RpcException>(async () => await fromFlooder.IssueCredentialAsync(_broker.Request(bad)));
            Assert.Equal("ATTESTATION_SIGNATURE_INVALID", BrokerRefusal.From(ex).Reason);
        }

        var fresh = await Assert.ThrowsAsync<RpcException>(async () => await fromFlooder.IssueCredentialAsync(_broker.Request(_broker.Svid(), task: "fresh")));
        Assert.Equal(StatusCode.ResourceExhausted, fresh.StatusCode);
        Assert.Equal("RATE_LIMITED", BrokerRefusal.From(fresh).Reason);

        Assert.NotEmpty((await fromFlooder.IssueCredentialAsync(_broker.Request(reused, task: "reused"))).AccessToken);

        // The same good proof is fine from an address with budget left.
        Assert.NotEmpty((await _broker.Client.IssueCredentialAsync(_broker.Request(_broker.Svid(), task: "fresh"))).AccessToken);

        await _broker.Host.Services.GetRequiredService<RefusalAuditor>().FlushAsync();
        var aggregated = Assert.Single(AuditReader.ReadAll([_broker.Host.AuditPath]).Select(r => r.Event), e => e.EventId == AuditEventTypes.RefusalsAggregated.Id);
        Assert.Equal("RATE_LIMITED", aggregated.Reason);
        Assert.Equal(1, aggregated.Count);
        Assert.Equal("127.0.0.2", aggregated.Peer);
    }

    [Fact]
    public async Task Failed_operator_tokens_past_the_budget_are_resource_exhausted_and_aggregated()
    {
        using var channel = ChannelFrom(Flooder);
        var admin = new AdminService.AdminServiceClient(channel);
        var headers = new Metadata { { "authorization", "Bearer not.a.token" } };
        var request = new RevokeRequest { Reason = "test", Selectors = { new Broker.V1.RevocationSelector { TaskId = "t" } } };

        var refusals = new List<BrokerRefusal>();
        for (var i = 0; i < Budget + 3; i++)
        {
            var ex = await Assert.ThrowsAsync<RpcException>(async () => await admin.RevokeAsync(request, headers));
            refusals.Add(BrokerRefusal.From(ex));
        }

        Assert.All(refusals.Take(Budget), r => Assert.Equal("OPERATOR_UNAUTHENTICATED", r.Reason));
        Assert.All(refusals.Skip(Budget), r =>
        {
            Assert.Equal(StatusCode.ResourceExhausted, r.Status);
            Assert.Equal("RATE_LIMITED", r.Reason);
        });

        // An operator elsewhere is not limited by it.
        await _broker.RevokeAsync("still allowed", new Broker.V1.RevocationSelector { TaskId = "t" });

        await _broker.Host.Services.GetRequiredService<RefusalAuditor>().FlushAsync();
        var records = AuditReader.ReadAll([_broker.Host.AuditPath]).Select(r => r.Event).Where(e => e.Peer == "127.0.0.2").ToList();
        Assert.Equal(Budget, records.Count(e => e.EventId == AuditEventTypes.OperatorAuthenticationFailed.Id));
        Assert.Equal(3, Assert.Single(records, e => e.EventId == AuditEventTypes.RefusalsAggregated.Id).Count);
    }

    /// <summary>A channel whose connections leave from <paramref name="local"/>, so the node sees another peer.</summary>
    private GrpcChannel ChannelFrom(IPAddress local) =>
        GrpcChannel.ForAddress(_broker.Host.GrpcAddress, new GrpcChannelOptions { HttpHandler = LocalAddressHandler.Create(local) });
}
