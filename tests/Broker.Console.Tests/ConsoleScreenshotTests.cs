using Broker.Console.Tests.Infrastructure;
using Broker.V1;

namespace Broker.Console.Tests;

/// <summary>
/// Renders the three pages with live data and saves them as PNGs: to the folder named by
/// <c>BROKER_CONSOLE_SCREENSHOTS</c> (docs/console/ when refreshing the docs), else a temp folder.
/// </summary>
[Collection(ChromiumCollection.Name)]
public sealed class ConsoleScreenshotTests(Chromium chromium) : IAsyncLifetime
{
    private ConsoleWorld _world = null!;

    // Small audit segments, so the audit page has closed, checkpointed segments to show.
    public async Task InitializeAsync() => _world = await ConsoleWorld.StartAsync(new Dictionary<string, string?> { ["Broker:Audit:SegmentMaxBytes"] = "2048" });

    public async Task DisposeAsync() => await _world.DisposeAsync();

    [Fact]
    public async Task The_approvals_respond_and_audit_pages_render_with_live_data()
    {
        var folder = Environment.GetEnvironmentVariable("BROKER_CONSOLE_SCREENSHOTS") is { Length: > 0 } configured
            ? Directory.CreateDirectory(configured).FullName
            : Directory.CreateTempSubdirectory("broker-console-shots-").FullName;

        await _world.Scenario.Client.IssueCredentialAsync(_world.Scenario.Request(task: "INC-311", phase: Phase.Planning, scopes: ["repo:read", "tickets:read"]));
        await _world.AskAsync("INC-311", "Roll out the fix for INC-311 to production", "repo:read", "deploy:prod");
        await _world.AskAsync("PAY-88", "Refund the duplicate charges of batch 88", "payments:write");

        await using var ops = await ConsoleSession.DevSignInAsync(chromium.Browser, _world.Console, "alice", "approver", "responder", "auditor");
        await ops.GotoAsync("/console/approvals");
        await ops.Page.ScreenshotAsync(new() { Path = Path.Combine(folder, "approvals.png"), FullPage = true });

        await ops.GotoAsync("/console/respond");
        await ops.Page.SelectOptionAsync("#revoke-kind", "agent");
        await ops.Page.FillAsync("#revoke-value", _world.Scenario.Trust.SpiffeId("/agents/old-runner"));
        await ops.Page.FillAsync("#revoke-reason", "INC-310: retired runner");
        await ops.Page.ClickAsync("#review-revoke");
        await ops.Page.ClickAsync("#confirm-revoke");
        await ops.GotoAsync("/console/respond?task=INC-311&agent=" + Uri.EscapeDataString(_world.Agent));
        await ops.Page.SelectOptionAsync("#revoke-kind", "task");
        await ops.Page.FillAsync("#revoke-value", "INC-311");
        await ops.Page.FillAsync("#revoke-reason", "INC-311: agent chained tools outside its plan");
        await ops.Page.ClickAsync("#review-revoke");
        await ops.Page.ScreenshotAsync(new() { Path = Path.Combine(folder, "respond.png"), FullPage = true });

        await ops.GotoAsync("/console/audit?verify=true&limit=12");
        await ops.Page.ScreenshotAsync(new() { Path = Path.Combine(folder, "audit.png"), FullPage = true });

        foreach (var name in new[] { "approvals.png", "respond.png", "audit.png" })
        {
            var bytes = await File.ReadAllBytesAsync(Path.Combine(folder, name));
            Assert.True(bytes.Length > 10_000, name + " is nearly empty");
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], bytes[..4]);
        }
    }
}
