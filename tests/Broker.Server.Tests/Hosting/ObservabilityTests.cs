using System.Diagnostics;
using System.Globalization;
using Broker.Core.Diagnostics;
using Broker.Server.Tests.Infrastructure;
using Broker.V1;
using Grpc.Core;

namespace Broker.Server.Tests.Hosting;

/// <summary>
/// What an operator sees without reading code: each node's Prometheus endpoint reports
/// issuance by phase and outcome, refusals by reason, revocation freshness and propagation,
/// shared-state and audit fsync latency; traces carry ids, never credentials.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class ObservabilityTests(RedisFixture redis) : IAsyncLifetime
{
    private readonly string _prefix = RedisFixture.NewPrefix();
    private readonly HttpClient _http = new();
    private BrokerScenario _a = null!;
    private BrokerTestHost _b = null!;

    public async Task InitializeAsync()
    {
        _a = await BrokerScenario.StartAsync(redis.Server.Configuration, redisPrefix: _prefix);
        _b = await _a.StartPeerAsync(redis.Server.Configuration, _prefix);
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _b.DisposeAsync();
        await _a.DisposeAsync();
    }

    [Fact]
    public async Task Prometheus_endpoint_reports_issuance_refusals_state_and_audit_latency()
    {
        var before = await ScrapeAsync(_a.Host);
        var peerBefore = await ScrapeAsync(_b);
        await _a.Client.IssueCredentialAsync(_a.Request(task: "metrics-issued"));
        await _a.Client.IssueCredentialAsync(_a.Request(task: "metrics-exec", phase: Phase.Execution, scopes: "deploy:staging"));
        var refusal = await _a.RefusedAsync(_a.Request(task: "metrics-refused", scopes: "deploy:production"));
        Assert.Equal("SCOPE_NOT_ALLOWED", refusal.Reason);

        var after = await ScrapeAsync(_a.Host);

        Assert.Equal(1, Delta(before, after, "broker_issuance_duration_seconds_count", ("broker_phase", "planning"), ("broker_outcome", "issued")));
        Assert.Equal(1, Delta(before, after, "broker_issuance_duration_seconds_count", ("broker_phase", "execution"), ("broker_outcome", "issued")));
        Assert.Equal(1, Delta(before, after, "broker_issuance_duration_seconds_count", ("broker_phase", "planning"), ("broker_outcome", "refused")));
        Assert.Equal(1, Delta(before, after, "broker_refusals_total", ("broker_reason", "SCOPE_NOT_ALLOWED"), ("rpc_grpc_status", "PERMISSION_DENIED"), ("rpc_method", "/broker.v1.CredentialService/IssueCredential")));

        // Two issuances recorded in Redis; every issuance and the refusal made durable in the audit log.
        Assert.Equal(2, Delta(before, after, "broker_state_duration_seconds_count", ("broker_operation", "credential.record_issuance"), ("broker_outcome", "ok")));
        Assert.True(Delta(before, after, "broker_audit_batch_size_sum") >= 3, "three audit records were made durable");
        Assert.True(Delta(before, after, "broker_audit_fsync_duration_seconds_count") >= 1);
        Assert.True(Value(after, "broker_audit_fsync_duration_seconds_sum") > 0);

        Assert.Equal(1, Value(after, "broker_revocation_current"));
        Assert.Equal(1, Value(after, "broker_audit_writable"));
        Assert.Equal(0, Value(after, "broker_issuance_frozen"));
        Assert.InRange(Value(after, "broker_revocation_staleness_seconds"), 0, 2);

        // Each node reports only its own work.
        var peerAfter = await ScrapeAsync(_b);
        Assert.Equal(PrometheusText.Sum(peerBefore, "broker_issuance_duration_seconds_count") ?? 0, PrometheusText.Sum(peerAfter, "broker_issuance_duration_seconds_count") ?? 0);
    }

    [Fact]
    public async Task A_revocation_made_at_one_node_shows_as_propagation_lag_at_the_other()
    {
        var issued = await _a.Client.IssueCredentialAsync(_a.Request(task: "metrics-revoked"));
        var before = await ScrapeAsync(_b);

        await _a.RevokeAsync("metrics", new Broker.V1.RevocationSelector { TokenId = issued.TokenId });

        // B learns of the entry from the shared log, and says so.
        var after = await EventuallyAsync(async () =>
        {
            var scrape = await ScrapeAsync(_b);
            return Delta(before, scrape, "broker_revocation_propagation_lag_seconds_count") >= 1 ? scrape : null;
        });
        Assert.True(Value(after, "broker_revocation_index_entries") >= 1);
        Assert.True(Delta(before, after, "broker_state_duration_seconds_count", ("broker_operation", "revocation.read"), ("broker_outcome", "ok")) >= 1);
    }

    [Fact]
    public async Task Freeze_shows_on_every_node_and_unfreeze_clears_it()
    {
        await _a.Admin.FreezeAsync(new FreezeRequest { Reason = "metrics drill" }, _a.As("alice", "responder"));
        try
        {
            await EventuallyAsync(async () => Value(await ScrapeAsync(_b), "broker_issuance_frozen") == 1 ? true : (bool?)null);
        }
        finally
        {
            await _a.Admin.UnfreezeAsync(new UnfreezeRequest { Reason = "drill over" }, _a.As("alice", "responder"));
        }

        await EventuallyAsync(async () => Value(await ScrapeAsync(_b), "broker_issuance_frozen") == 0 ? true : (bool?)null);
    }

    [Fact]
    public async Task Issuance_trace_carries_ids_and_outcome_but_never_the_credential_or_proof()
    {
        var task = "trace-" + Guid.NewGuid().ToString("N");
        var spans = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == BrokerActivity.SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                lock (spans)
                {
                    spans.Add(activity);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);

        var svid = _a.Svid();
        var issued = await _a.Client.IssueCredentialAsync(_a.Request(svid, task: task));
        await _a.RefusedAsync(_a.Request(svid, task: task, scopes: "deploy:production"));

        List<Activity> ours;
        lock (spans)
        {
            ours = spans.Where(s => s.OperationName == "broker.issue" && (string?)s.GetTagItem("broker.task_id") == task).ToList();
        }

        Assert.Equal(2, ours.Count);
        var ok = Assert.Single(ours, s => (string?)s.GetTagItem("broker.outcome") == "issued");
        Assert.Equal(issued.TokenId, ok.GetTagItem("broker.token_id"));
        Assert.Equal("planning", ok.GetTagItem("broker.phase"));
        Assert.Equal(issued.Subject, ok.GetTagItem("broker.agent"));
        var refused = Assert.Single(ours, s => (string?)s.GetTagItem("broker.outcome") == "refused");
        Assert.Equal("SCOPE_NOT_ALLOWED", refused.GetTagItem("broker.reason"));
        Assert.Equal(ActivityStatusCode.Error, refused.Status);

        // The durable write is a child span of the issuance.
        lock (spans)
        {
            Assert.Contains(spans, s => s.OperationName == "broker.state credential.record_issuance" && s.ParentSpanId == ok.SpanId);
        }

        var tagValues = ours.SelectMany(s => s.TagObjects).Select(t => t.Value?.ToString() ?? "").ToList();
        Assert.DoesNotContain(tagValues, v => v.Contains(issued.AccessToken.Split('.')[2], StringComparison.Ordinal) || v.Contains(svid.Split('.')[2], StringComparison.Ordinal));
    }

    [Fact]
    public async Task Metrics_endpoint_can_be_confined_to_a_dedicated_port()
    {
        var metricsPort = Broker.Testing.RedisServer.FreePort();
        await using var node = await _a.StartPeerAsync(redis.Server.Configuration, _prefix, peer => peer with
        {
            Settings = new Dictionary<string, string?> { ["Broker:Observability:MetricsPort"] = metricsPort.ToString(CultureInfo.InvariantCulture) },
            ExtraHttpPorts = [metricsPort],
        });

        var onMetricsPort = await _http.GetAsync(new Uri($"http://127.0.0.1:{metricsPort}/metrics"));
        var onPublicPort = await _http.GetAsync(new Uri(node.HttpAddress + "/metrics"));

        // The Host header is the caller's to write: it must not open the endpoint elsewhere.
        using var forged = new HttpRequestMessage(HttpMethod.Get, new Uri(node.HttpAddress + "/metrics"));
        forged.Headers.Host = $"127.0.0.1:{metricsPort}";
        var forgedHost = await _http.SendAsync(forged);

        // The metrics listener serves nothing but the scrape.
        var otherOnMetricsPort = await _http.GetAsync(new Uri($"http://127.0.0.1:{metricsPort}/.well-known/jwks.json"));
        var ssfOnMetricsPort = await _http.PostAsync(new Uri($"http://127.0.0.1:{metricsPort}/ssf/events"), new StringContent("x"));

        Assert.Equal(System.Net.HttpStatusCode.OK, onMetricsPort.StatusCode);
        Assert.Contains("broker_revocation_current", await onMetricsPort.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(System.Net.HttpStatusCode.NotFound, onPublicPort.StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.NotFound, forgedHost.StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.NotFound, otherOnMetricsPort.StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.NotFound, ssfOnMetricsPort.StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.OK, (await _http.GetAsync(new Uri(node.HttpAddress + "/.well-known/jwks.json"))).StatusCode);
    }

    private async Task<Dictionary<string, double>> ScrapeAsync(BrokerTestHost host)
    {
        var text = await _http.GetStringAsync(new Uri(host.HttpAddress + "/metrics"));
        return PrometheusText.Parse(text);
    }

    private static double Value(Dictionary<string, double> scrape, string name, params (string Label, string Value)[] labels) =>
        PrometheusText.Sum(scrape, name, labels) ?? throw new Xunit.Sdk.XunitException($"{name} is not exported");

    private static double Delta(Dictionary<string, double> before, Dictionary<string, double> after, string name, params (string Label, string Value)[] labels) =>
        Value(after, name, labels) - (PrometheusText.Sum(before, name, labels) ?? 0);

    private static async Task<T> EventuallyAsync<T>(Func<Task<T?>> probe)
        where T : class
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            if (await probe() is { } result)
            {
                return result;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new Xunit.Sdk.XunitException("condition not met within 10 s");
            }

            await Task.Delay(25);
        }
    }

    private static async Task EventuallyAsync(Func<Task<bool?>> probe)
    {
        await EventuallyAsync<object>(async () => await probe() == true ? new object() : null);
    }
}
