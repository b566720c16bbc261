using System.Text.Json;
using Broker.Console.Tests.Infrastructure;
using Broker.Core.Revocation;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Playwright;

namespace Broker.Console.Tests;

/// <summary>What the console refuses: forged posts, missing roles; and what it never sends: scripts, third-party styles, tokens.</summary>
[Collection(ChromiumCollection.Name)]
public sealed class ConsoleSecurityTests(Chromium chromium) : IAsyncLifetime
{
    private ConsoleWorld _world = null!;

    private RevocationFeed Feed => _world.Host.Services.GetRequiredService<RevocationFeed>();

    public async Task InitializeAsync() => _world = await ConsoleWorld.StartAsync();

    public async Task DisposeAsync() => await _world.DisposeAsync();

    [Fact]
    public async Task A_post_without_the_anti_forgery_token_is_refused_audited_and_changes_nothing()
    {
        await using var rita = await ConsoleSession.DevSignInAsync(chromium.Browser, _world.Console, "rita", "responder");

        // The session's cookies, but no form token: what a forged request carrying them would look like.
        var response = await rita.Context.APIRequest.PostAsync(_world.Console + "/console/respond?handler=Freeze", new APIRequestContextOptions
        {
            Form = rita.Context.APIRequest.CreateFormData().Set("reason", "forged"),
            MaxRedirects = 0,
        });
        Assert.Equal(400, response.Status);
        Assert.Null(Feed.Freeze);

        var audit = (await _world.AuditAsync()).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var refused = Assert.Single(audit, e => e.GetProperty("type").GetString() == "console.request_refused");
        Assert.Equal("ANTIFORGERY_INVALID", refused.GetProperty("reason").GetString());
        Assert.Equal("operator:rita", refused.GetProperty("actor").GetString());
    }

    [Fact]
    public async Task A_form_on_another_site_cannot_act_for_a_signed_in_operator()
    {
        await using var rita = await ConsoleSession.DevSignInAsync(chromium.Browser, _world.Console, "rita", "responder");
        await using var attacker = await AttackerSiteAsync(_world.Console + "/console/respond?handler=Freeze");

        // localhost and 127.0.0.1 are different sites: the SameSite=Strict session cookie stays home.
        await rita.Page.GotoAsync(attacker.Urls.First());
        await rita.Page.ClickAsync("#go");
        await rita.Page.WaitForURLAsync(url => url.Contains("/console/dev-sign-in", StringComparison.Ordinal));
        Assert.Null(Feed.Freeze);

        var cookies = await rita.Context.CookiesAsync([_world.Console + "/console"]);
        Assert.NotEmpty(cookies);
        Assert.All(cookies, c =>
        {
            Assert.Equal(SameSiteAttribute.Strict, c.SameSite);
            Assert.True(c.HttpOnly);
            Assert.Equal("/console", c.Path);
        });
    }

    [Fact]
    public async Task Pages_and_actions_outside_the_operators_roles_are_refused_and_audited()
    {
        await using var audrey = await ConsoleSession.DevSignInAsync(chromium.Browser, _world.Console, "audrey", "auditor");
        var denied = await audrey.GotoAsync("/console/approvals");
        Assert.Equal(403, denied.Status);
        Assert.StartsWith("ROLE_MISSING", await audrey.Page.TextContentAsync("#denied"), StringComparison.Ordinal);

        // An auditor may look at the response page but not act, even with a valid form token.
        await audrey.GotoAsync("/console/respond");
        Assert.Null(await audrey.Page.QuerySelectorAsync("#freeze-button"));
        Assert.Null(await audrey.Page.QuerySelectorAsync("#revoke"));
        var token = await audrey.AntiforgeryTokenAsync();
        var post = await audrey.Context.APIRequest.PostAsync(_world.Console + "/console/respond?handler=Freeze", new APIRequestContextOptions
        {
            Form = audrey.Context.APIRequest.CreateFormData().Set("reason", "not mine to do").Set("__RequestVerificationToken", token),
        });
        Assert.Equal(403, post.Status);
        Assert.Null(Feed.Freeze);

        await using var anonymous = await ConsoleSession.OpenAsync(chromium.Browser, _world.Console);
        await anonymous.GotoAsync("/console/audit");
        Assert.Contains("/console/dev-sign-in", anonymous.Page.Url, StringComparison.Ordinal);

        var audit = (await _world.AuditAsync()).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var refusals = audit.Where(e => e.GetProperty("type").GetString() == "operator.authentication_failed").ToList();
        Assert.Contains(refusals, e => e.GetProperty("reason").GetString() == "ROLE_MISSING" && e.GetProperty("detail").GetString() == "/console/approvals");
        Assert.Contains(refusals, e => e.GetProperty("reason").GetString() == "ROLE_MISSING" && e.GetProperty("detail").GetString() == "/console/respond");
    }

    [Fact]
    public async Task Every_page_carries_a_strict_content_security_policy_and_no_script()
    {
        await using var all = await ConsoleSession.DevSignInAsync(chromium.Browser, _world.Console, "ops", "approver", "responder", "auditor");
        foreach (var path in new[] { "/console", "/console/approvals", "/console/respond", "/console/audit?verify=true" })
        {
            var response = await all.GotoAsync(path);
            Assert.Equal(200, response.Status);
            var headers = await response.AllHeadersAsync();
            Assert.Equal("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'", headers["content-security-policy"]);
            Assert.Equal("no-store", headers["cache-control"]);
            Assert.Equal("nosniff", headers["x-content-type-options"]);
            Assert.Empty(await all.Page.QuerySelectorAllAsync("script"));

            // Every form that changes anything carries the anti-forgery token.
            foreach (var form in await all.Page.QuerySelectorAllAsync("form[method=post]"))
            {
                Assert.NotNull(await form.QuerySelectorAsync("input[name=__RequestVerificationToken]"));
            }
        }
    }

    [Fact]
    public async Task An_auditor_searches_the_log_and_sees_the_chain_verified()
    {
        var issued = await _world.Scenario.Client.IssueCredentialAsync(_world.Scenario.Request(task: "audit-1"));
        await using var audrey = await ConsoleSession.DevSignInAsync(chromium.Browser, _world.Console, "audrey", "auditor");
        await audrey.GotoAsync("/console/audit");
        await audrey.Page.FillAsync("#audit-task", "audit-1");
        await audrey.Page.FillAsync("#audit-event", "credential.issued");
        await audrey.Page.CheckAsync("#audit-verify");
        await audrey.Page.ClickAsync("#audit-search");

        var rows = await audrey.Page.Locator("#records tbody tr").AllInnerTextsAsync();
        var row = Assert.Single(rows);
        Assert.Contains(issued.TokenId, row, StringComparison.Ordinal);
        Assert.Contains(_world.Agent, row, StringComparison.Ordinal);
        Assert.StartsWith("OK:", await audrey.Page.TextContentAsync("#verify-result"), StringComparison.Ordinal);
        Assert.DoesNotContain(issued.AccessToken, await audrey.Page.ContentAsync(), StringComparison.Ordinal);

        var bad = await audrey.GotoAsync("/console/audit?since=yesterday");
        Assert.Equal(400, bad.Status);
    }

    /// <summary>Another site (localhost, not 127.0.0.1) serving a form that posts to the console.</summary>
    private static async Task<WebApplication> AttackerSiteAsync(string target)
    {
        var port = Broker.Testing.RedisServer.FreePort();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.ListenLocalhost(port));
        var app = builder.Build();
        app.Urls.Add($"http://localhost:{port}");
        app.MapGet("/", () => Results.Content(
            $"""<html><body><form method="post" action="{target}"><input name="reason" value="forged"><button id="go">win a prize</button></form></body></html>""",
            "text/html"));
        await app.StartAsync();
        return app;
    }
}
