using System.Net;
using System.Text.Json;
using Broker.Core.Audit;
using Broker.Core.Refusals;
using Broker.Server.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Broker.Server.Tests.Risk;

/// <summary>SET pushes refused past the sender's refusal budget: 429 with Retry-After, counted into one audit record.</summary>
public sealed class SsfRateLimitTests : IAsyncLifetime
{
    private const int Budget = 2;
    private BrokerScenario _broker = null!;

    public async Task InitializeAsync() => _broker = await BrokerScenario.StartAsync(settings: RefusalBudgetSettings.Of(Budget));

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Fact]
    public async Task Refused_sets_past_the_budget_are_answered_429_and_aggregated()
    {
        using var http = new HttpClient { BaseAddress = new Uri(_broker.Host.HttpAddress) };
        var answers = new List<(HttpStatusCode Status, TimeSpan? RetryAfter, string? Err)>();
        for (var i = 0; i < Budget + 4; i++)
        {
            using var content = new StringContent("not.a.set");
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/secevent+jwt");
            using var response = await http.PostAsync("/ssf/events", content);
            var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            answers.Add((response.StatusCode, response.Headers.RetryAfter?.Delta, body.GetProperty("err").GetString()));
        }

        Assert.All(answers.Take(Budget), a => Assert.Equal(HttpStatusCode.BadRequest, a.Status));
        Assert.All(answers.Skip(Budget), a =>
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, a.Status);
            Assert.Equal("rate_limited", a.Err);
            Assert.True(a.RetryAfter >= TimeSpan.FromSeconds(1));
        });

        await _broker.Host.Services.GetRequiredService<RefusalAuditor>().FlushAsync();
        var records = AuditReader.ReadAll([_broker.Host.AuditPath]).Select(r => r.Event).ToList();
        Assert.Equal(Budget, records.Count(e => e.EventId == AuditEventTypes.RiskSignalRefused.Id));
        var aggregated = Assert.Single(records, e => e.EventId == AuditEventTypes.RefusalsAggregated.Id);
        Assert.Equal(4, aggregated.Count);
        Assert.Equal(RefusalDoors.Ssf, aggregated.Detail);
        Assert.StartsWith("SSF_SET_REFUSED:", aggregated.Reason, StringComparison.Ordinal);
    }
}
