using System.Diagnostics.Metrics;
using Broker.Core.Audit;
using Broker.Core.Diagnostics;
using Broker.Core.Errors;
using Broker.Core.Refusals;
using Broker.Core.Tests.Policy;
using Broker.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Broker.Core.Tests.Refusals;

public sealed class RefusalAuditorTests : IAsyncLifetime
{
    // An hour: the bucket (which refills on the system clock) never refills during a test; the
    // fake clock alone decides when a window closes.
    private static readonly TimeSpan Window = TimeSpan.FromHours(1);

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 2, 18, 0, 0, TimeSpan.Zero));
    private readonly RecordingAuditSink _audit = new();
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private RefusalAuditor _refusals = null!;
    private BrokerMetrics? _metrics;

    public async Task InitializeAsync()
    {
        _refusals = Create(new RateLimitOptions { PermitsPerWindow = 3, Window = Window });
        await _refusals.StartAsync(CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await _refusals.DisposeAsync();
        await _services.DisposeAsync();
    }

    [Fact]
    public async Task Refusals_within_the_budget_are_audited_one_each_with_their_reason()
    {
        for (var i = 0; i < 3; i++)
        {
            Assert.Null(await _refusals.AuditAsync(Refusal("ipv4:10.0.0.1:4000", BrokerErrors.AttestationSignatureInvalid), RefusalSource.FromPeer(RefusalDoors.Attestation, "ipv4:10.0.0.1:4000"), default));
        }

        Assert.Equal(3, _audit.Events.Count);
        Assert.All(_audit.Events, e => Assert.Equal(BrokerErrors.AttestationSignatureInvalid, e.Reason));
    }

    [Fact]
    public async Task Past_the_budget_a_refusal_is_rate_limited_and_counted_into_one_record_per_window()
    {
        var flooder = RefusalSource.FromPeer(RefusalDoors.Attestation, "ipv4:10.0.0.1:4000");
        var first = _time.GetUtcNow();
        var limited = new List<BrokerException>();
        for (var i = 0; i < 10; i++)
        {
            if (await _refusals.AuditAsync(Refusal("ipv4:10.0.0.1:" + (4000 + i), BrokerErrors.AttestationKeyUnknown), flooder, default) is { } refused)
            {
                limited.Add(refused);
            }

            _time.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.Equal(7, limited.Count);
        Assert.All(limited, l =>
        {
            Assert.Equal(FailureKind.ResourceExhausted, l.Kind);
            Assert.Equal(BrokerErrors.RateLimited, l.Reason);
            Assert.True(int.Parse(l.Metadata[RefusalAuditor.RetryAfterMetadata], System.Globalization.CultureInfo.InvariantCulture) >= 1);
        });
        Assert.Equal(3, _audit.Events.Count);

        // The window closes on the clock: one record for the seven, with when they began and ended.
        _time.Advance(Window);
        await Poll.UntilAsync(() => _audit.OfType(AuditEventTypes.RefusalsAggregated).Count > 0, "the window's aggregated record is written");
        var aggregated = _audit.OfType(AuditEventTypes.RefusalsAggregated);
        var record = Assert.Single(aggregated);
        Assert.Equal(7, record.Count);
        Assert.Equal(BrokerErrors.AttestationKeyUnknown, record.Reason);
        Assert.Equal("10.0.0.1", record.Peer);
        Assert.Equal(RefusalDoors.Attestation, record.Detail);
        Assert.Equal(first.AddSeconds(3), record.FirstAt);
        Assert.Equal(first.AddSeconds(9), record.LastAt);
        Assert.Equal(AuditOutcomes.Failure, record.Outcome);

        // An empty window writes nothing.
        await _refusals.FlushAsync();
        Assert.Single(_audit.OfType(AuditEventTypes.RefusalsAggregated));
    }

    [Fact]
    public async Task One_peers_flood_spends_neither_another_peers_budget_nor_an_attested_workloads()
    {
        for (var i = 0; i < 20; i++)
        {
            await _refusals.AuditAsync(Refusal("ipv4:10.0.0.1:4000", BrokerErrors.AttestationMalformed), RefusalSource.FromPeer(RefusalDoors.Attestation, "ipv4:10.0.0.1:4000"), default);
        }

        // Same address, but attested: charged to the workload, which keeps its precise reason.
        Assert.Null(await _refusals.AuditAsync(Refusal("ipv4:10.0.0.1:4001", BrokerErrors.ScopeNotAllowed), RefusalSource.FromWorkload(RefusalDoors.Issuance, "spiffe://example.org/agents/a", "ipv4:10.0.0.1:4001"), default));
        Assert.Null(await _refusals.AuditAsync(Refusal("ipv4:10.0.0.2:4000", BrokerErrors.AttestationMalformed), RefusalSource.FromPeer(RefusalDoors.Attestation, "ipv4:10.0.0.2:4000"), default));

        Assert.Equal(5, _audit.Events.Count);
        Assert.Contains(_audit.Events, e => e.Reason == BrokerErrors.ScopeNotAllowed);
    }

    [Fact]
    public async Task Stopping_writes_what_the_open_window_counted()
    {
        var source = RefusalSource.FromPeer(RefusalDoors.Operator, "192.0.2.7");
        for (var i = 0; i < 5; i++)
        {
            await _refusals.AuditAsync(Refusal("192.0.2.7", "SecurityTokenInvalidSignatureException"), source, default);
        }

        await _refusals.StopAsync(CancellationToken.None);

        Assert.Equal(2, Assert.Single(_audit.OfType(AuditEventTypes.RefusalsAggregated)).Count);
    }

    [Fact]
    public async Task Disabled_audits_every_refusal()
    {
        await using var off = Create(new RateLimitOptions { Enabled = false, PermitsPerWindow = 1, Window = Window });
        for (var i = 0; i < 5; i++)
        {
            Assert.Null(await off.AuditAsync(Refusal("ipv4:10.0.0.1:1", BrokerErrors.AttestationMalformed), RefusalSource.FromPeer(RefusalDoors.Attestation, "ipv4:10.0.0.1:1"), default));
        }

        Assert.Equal(5, _audit.Events.Count);
    }

    [Fact]
    public async Task Rate_limited_refusals_are_counted_by_door_and_reason()
    {
        var counted = new List<(long Value, string? Door, string? Reason)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "broker.rate_limited" && instrument.Meter == _metrics?.Meter)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            string? door = null, reason = null;
            foreach (var tag in tags)
            {
                door = tag.Key == "broker.door" ? (string?)tag.Value : door;
                reason = tag.Key == "broker.reason" ? (string?)tag.Value : reason;
            }

            counted.Add((value, door, reason));
        });
        listener.Start();

        for (var i = 0; i < 5; i++)
        {
            await _refusals.AuditAsync(Refusal(null, BrokerErrors.SignalSourceNotAllowed), RefusalSource.FromPeer(RefusalDoors.Signal, null), default);
        }

        Assert.Equal(2, counted.Count);
        Assert.All(counted, c => Assert.Equal((1L, RefusalDoors.Signal, BrokerErrors.SignalSourceNotAllowed), c));
    }

    [Theory]
    [InlineData("ipv4:198.51.100.4:5000", "198.51.100.4")]
    [InlineData("198.51.100.4", "198.51.100.4")]
    [InlineData("ipv6:[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443", "2001:db8:1:2::/64")]
    [InlineData("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64")]
    [InlineData("ipv6:[::ffff:198.51.100.4]:80", "198.51.100.4")]
    [InlineData("unix:/tmp/socket", PeerAddress.Unknown)]
    [InlineData(null, PeerAddress.Unknown)]
    [InlineData("ipv4:not-an-address:1", PeerAddress.Unknown)]
    public void A_peer_is_charged_by_address_without_its_port_and_ipv6_by_its_64(string? peer, string expected) =>
        Assert.Equal(expected, PeerAddress.Of(peer));

    [Theory]
    [InlineData(0, "00:01:00", 0, "BRK1090")]
    [InlineData(30, "00:00:00.500", 0, "BRK1091")]
    [InlineData(30, "02:00:00", 0, "BRK1091")]
    [InlineData(30, "00:01:00", -1, "BRK1092")]
    public void A_budget_that_bounds_nothing_is_refused_naming_the_setting(int permits, string window, int queue, string id)
    {
        var result = new RateLimitOptionsValidator().Validate(null, new RateLimitOptions { PermitsPerWindow = permits, Window = TimeSpan.Parse(window, System.Globalization.CultureInfo.InvariantCulture), QueueLimit = queue });

        var failure = Assert.Single(result.Failures!);
        Assert.StartsWith(id + ": Broker:RateLimit:", failure, StringComparison.Ordinal);
    }

    private RefusalAuditor Create(RateLimitOptions options)
    {
        _metrics ??= new BrokerMetrics(_services.GetRequiredService<IMeterFactory>());
        return new(_audit, Options.Create(options), _time, _metrics, NullLogger<RefusalAuditor>.Instance);
    }

    private AuditEvent Refusal(string? peer, string reason) => new()
    {
        EventId = AuditEventTypes.AttestationRefused.Id,
        Type = AuditEventTypes.AttestationRefused.Name,
        Time = _time.GetUtcNow(),
        CorrelationId = Guid.NewGuid().ToString("N"),
        Outcome = AuditOutcomes.Failure,
        Reason = reason,
        Peer = peer,
    };
}
