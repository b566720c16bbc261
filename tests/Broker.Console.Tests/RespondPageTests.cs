using System.Net;
using System.Text.Json;
using Broker.Console.Tests.Infrastructure;
using Broker.Core.Revocation;
using Broker.Server.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Broker.Console.Tests;

/// <summary>Responders in Chromium: revoke with a confirmation step, freeze and unfreeze, risk and live tokens.</summary>
[Collection(ChromiumCollection.Name)]
public sealed class RespondPageTests(Chromium chromium) : IAsyncLifetime
{
    private ConsoleWorld _world = null!;

    public async Task InitializeAsync() => _world = await ConsoleWorld.StartAsync();

    public async Task DisposeAsync() => await _world.DisposeAsync();

    [Fact]
    public async Task A_responder_revokes_a_task_after_confirming_and_a_resource_server_refuses_its_token()
    {
        var issued = await _world.Scenario.Client.IssueCredentialAsync(_world.Scenario.Request(task: "inc-7"));
        await using var api = await ResourceApi.StartAsync(_world.Host.Issuer, BrokerScenario.ResourceAudience, revocationAddress: _world.Host.GrpcAddress, resourceServerToken: _world.Host.ResourceServerToken);
        using var http = new HttpClient();
        Assert.Equal(HttpStatusCode.OK, await CallAsync(http, api, issued.AccessToken));

        await using var rita = await ConsoleSession.DevSignInAsync(chromium.Browser, _world.Console, "rita", "responder");
        var page = rita.Page;

        // Look first: the task's risk and its live token (its id, never the token).
        await rita.GotoAsync("/console/respond?task=inc-7");
        Assert.Contains(issued.TokenId, await page.InnerTextAsync("#tokens"), StringComparison.Ordinal);
        Assert.DoesNotContain(issued.AccessToken, await page.ContentAsync(), StringComparison.Ordinal);

        // Step one only reviews: nothing is revoked yet.
        await page.SelectOptionAsync("#revoke-kind", "task");
        await page.FillAsync("#revoke-value", "inc-7");
        await page.FillAsync("#revoke-reason", "INC-7: agent chained tools outside its plan");
        await page.ClickAsync("#review-revoke");
        Assert.Equal("task inc-7", await page.TextContentAsync("#confirm-selector"));
        Assert.Contains(issued.TokenId, await page.InnerTextAsync("#confirm"), StringComparison.Ordinal);
        Assert.Empty(_world.Host.Services.GetRequiredService<RevocationFeed>().LiveEntries());
        Assert.Equal(HttpStatusCode.OK, await CallAsync(http, api, issued.AccessToken));

        await page.ClickAsync("#confirm-revoke");
        Assert.StartsWith("Revoked: task inc-7", await page.TextContentAsync("#done"), StringComparison.Ordinal);
        Assert.Contains("INC-7: agent chained tools outside its plan", await page.InnerTextAsync("#revocations"), StringComparison.Ordinal);
        await Eventually.TrueAsync(async () => await CallAsync(http, api, issued.AccessToken) == HttpStatusCode.Unauthorized, "the resource server still accepts the revoked task's token");

        await rita.GotoAsync("/console/respond?task=inc-7");
        Assert.NotNull(await page.QuerySelectorAsync("#no-tokens"));

        var audit = (await _world.AuditAsync()).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var revoked = Assert.Single(audit, e => e.GetProperty("type").GetString() == "credential.revoked");
        Assert.Equal("operator:rita", revoked.GetProperty("actor").GetString());
        Assert.Equal("INC-7: agent chained tools outside its plan", revoked.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_responder_freezes_and_unfreezes_issuance()
    {
        await using var rita = await ConsoleSession.DevSignInAsync(chromium.Browser, _world.Console, "rita", "responder");
        var page = rita.Page;
        await rita.GotoAsync("/console/respond");
        await page.FillAsync("#freeze input[name=reason]", "INC-9: containment");
        await page.ClickAsync("#freeze-button");
        Assert.Equal("frozen", await page.TextContentAsync("#freeze-state"));
        var refusal = await _world.Scenario.RefusedAsync(_world.Scenario.Request(task: "after-freeze"));
        Assert.Equal("ISSUANCE_FROZEN", refusal.Reason);

        await page.FillAsync("#freeze input[name=reason]", "INC-9: contained");
        await page.ClickAsync("#unfreeze");
        Assert.Equal("issuing", await page.TextContentAsync("#freeze-state"));
        Assert.NotEmpty((await _world.Scenario.Client.IssueCredentialAsync(_world.Scenario.Request(task: "after-thaw"))).AccessToken);
    }

    private static async Task<HttpStatusCode> CallAsync(HttpClient http, ResourceApi api, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, api.Address + "/whoami");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        using var response = await http.SendAsync(request);
        return response.StatusCode;
    }
}
