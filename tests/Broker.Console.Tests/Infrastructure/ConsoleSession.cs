using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Broker.Console.Tests.Infrastructure;

/// <summary>A browser context (its own cookies) signed in to a broker's console.</summary>
public sealed class ConsoleSession : IAsyncDisposable
{
    private ConsoleSession(IBrowserContext context, IPage page, string baseAddress)
    {
        Context = context;
        Page = page;
        BaseAddress = baseAddress;
    }

    public IBrowserContext Context { get; }

    public IPage Page { get; }

    public string BaseAddress { get; }

    /// <summary>Opens a context and signs in with the --dev sign-in as <paramref name="name"/> holding <paramref name="roles"/>.</summary>
    public static async Task<ConsoleSession> DevSignInAsync(IBrowser browser, string baseAddress, string name, params string[] roles)
    {
        var session = await OpenAsync(browser, baseAddress);
        var page = session.Page;
        await page.GotoAsync(baseAddress + "/console");
        Assert.Contains("/console/dev-sign-in", page.Url, StringComparison.Ordinal);
        await page.FillAsync("#name", name);
        foreach (var role in roles)
        {
            await page.CheckAsync("#role-" + role);
        }

        await page.ClickAsync("#sign-in");
        await page.WaitForURLAsync(new Regex("/console$"));
        Assert.Equal("operator:" + name, await page.TextContentAsync("#operator"));
        return session;
    }

    public static async Task<ConsoleSession> OpenAsync(IBrowser browser, string baseAddress)
    {
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1360, Height = 900 } });
        var page = await context.NewPageAsync();
        return new ConsoleSession(context, page, baseAddress);
    }

    public async Task<IResponse> GotoAsync(string path) =>
        await Page.GotoAsync(BaseAddress + path) ?? throw new InvalidOperationException("no response for " + path);

    /// <summary>The anti-forgery token of this session, read from the sign-out form every signed-in page has.</summary>
    public async Task<string> AntiforgeryTokenAsync() =>
        await Page.GetAttributeAsync("header form input[name=__RequestVerificationToken]", "value") ?? throw new InvalidOperationException("no anti-forgery token on the page");

    public async ValueTask DisposeAsync() => await Context.DisposeAsync();
}
