using System.Text.Json;
using Broker.Console.Tests.Infrastructure;
using Broker.Server.Hosting;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;

namespace Broker.Console.Tests;

/// <summary>
/// A production node (Redis state, operator IdP): operators sign in with authorization code +
/// PKCE at the operator Authority, and the dev sign-in does not exist.
/// </summary>
[Collection(ChromiumCollection.Name)]
public sealed class ProductionSignInTests(Chromium chromium) : IAsyncLifetime
{
    private RedisServer _redis = null!;
    private TestOidcProvider _idp = null!;
    private TestTrustDomain _trust = null!;
    private BrokerTestHost _host = null!;

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartAsync();
        _idp = await TestOidcProvider.StartAsync();
        _trust = new TestTrustDomain("example.org");
        var policy = Path.Combine(_trust.Directory, "policy.yaml");
        await File.WriteAllTextAsync(policy, BrokerScenario.Policy(_trust.WriteJwksFile(), _trust.WriteJwksFile("unused.jwks")));
        _host = await BrokerTestHost.StartAsync(new BrokerTestHostOptions
        {
            PolicyPath = policy,
            RedisConfiguration = _redis.Configuration,
            RedisKeyPrefix = RedisFixtureKeys.New(),
            OperatorAuthority = _idp.Issuer,
            Settings = new Dictionary<string, string?> { ["Broker:Console:ClientId"] = TestOidcProvider.ClientId },
        });
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        await _idp.DisposeAsync();
        await _redis.DisposeAsync();
        _trust.Dispose();
    }

    [Fact]
    public async Task An_operator_signs_in_at_the_operator_IdP_with_authorization_code_and_PKCE()
    {
        _idp.User = ("oscar", ["approver", "auditor"]);
        await using var session = await ConsoleSession.OpenAsync(chromium.Browser, _host.HttpAddress);
        await session.GotoAsync("/console/approvals");
        await session.Page.WaitForURLAsync(url => url.EndsWith("/console/approvals", StringComparison.Ordinal));

        Assert.Equal("operator:oscar", await session.Page.TextContentAsync("#operator"));
        Assert.Equal(1, _idp.PkceRedemptions);
        Assert.NotNull(await session.Page.QuerySelectorAsync("#empty"));

        // The session cookie holds no IdP token, and is SameSite=Strict.
        var cookies = await session.Context.CookiesAsync([_host.HttpAddress + "/console"]);
        var cookie = Assert.Single(cookies, c => c.Name.StartsWith("broker-console", StringComparison.Ordinal) && !c.Name.Contains("csrf", StringComparison.Ordinal));
        Assert.Equal(Microsoft.Playwright.SameSiteAttribute.Strict, cookie.SameSite);

        // Roles come from the IdP's roles claim: an approver and auditor is not a responder.
        var refused = await session.GotoAsync("/console/respond?task=x");
        Assert.Equal(200, refused.Status); // auditors may look
        Assert.Null(await session.Page.QuerySelectorAsync("#revoke"));

        var audit = (await AuditLinesAsync()).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var signedIn = Assert.Single(audit, e => e.GetProperty("type").GetString() == "console.signed_in");
        Assert.Equal("operator:oscar", signedIn.GetProperty("actor").GetString());
        Assert.Equal("oidc", signedIn.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task The_dev_sign_in_does_not_exist_outside_dev()
    {
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
        var get = await http.GetAsync(_host.HttpAddress + "/console/dev-sign-in");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, get.StatusCode);
        var post = await http.PostAsync(_host.HttpAddress + "/console/dev-sign-in", new FormUrlEncodedContent(new Dictionary<string, string> { ["name"] = "mallory", ["roles"] = "responder" }));
        Assert.Equal(System.Net.HttpStatusCode.NotFound, post.StatusCode);
        Assert.DoesNotContain(post.Headers, h => h.Key == "Set-Cookie" && h.Value.Any(v => v.StartsWith("broker-console=", StringComparison.Ordinal)));

        // Sign-in goes to the IdP instead.
        var signIn = await http.GetAsync(_host.HttpAddress + "/console/sign-in");
        Assert.Equal(System.Net.HttpStatusCode.Redirect, signIn.StatusCode);
        Assert.StartsWith(_idp.Issuer + "/authorize?", signIn.Headers.Location!.ToString(), StringComparison.Ordinal);
        Assert.Contains("code_challenge_method=S256", signIn.Headers.Location!.Query, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_enabled_console_without_an_OIDC_client_refuses_to_start()
    {
        var ex = await Assert.ThrowsAsync<BrokerStartupException>(() => BrokerTestHost.StartAsync(new BrokerTestHostOptions
        {
            PolicyPath = Path.Combine(_trust.Directory, "policy.yaml"),
            RedisConfiguration = _redis.Configuration,
            OperatorAuthority = _idp.Issuer,
            Settings = new Dictionary<string, string?> { ["Broker:Console:Enabled"] = "true" },
        }));
        Assert.Contains(ex.Problems, p => p.StartsWith("BRK1121: Broker:Console:ClientId is required", StringComparison.Ordinal));
    }

    private async Task<string[]> AuditLinesAsync()
    {
        var lines = new List<string>();
        foreach (var segment in Broker.Core.Audit.AuditFiles.All(_host.AuditPath))
        {
            await using var stream = new FileStream(segment.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            lines.AddRange((await reader.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }

        return [.. lines];
    }
}

internal static class RedisFixtureKeys
{
    public static string New() => $"t{Guid.NewGuid():N}:";
}
