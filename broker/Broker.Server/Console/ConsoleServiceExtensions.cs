using Broker.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Broker.Server.OperatorConsole;

/// <summary>Registers and maps the web console (Razor Pages under <c>/console</c>, server-rendered, no script).</summary>
internal static class ConsoleServiceExtensions
{
    public static WebApplicationBuilder AddOperatorConsole(this WebApplicationBuilder builder, BrokerOptions broker)
    {
        var console = builder.Configuration.GetSection(ConsoleOptions.Section).Get<ConsoleOptions>() ?? new ConsoleOptions();
        var problems = ConsoleOptionsValidator.Problems(console, broker);
        if (problems.Count > 0)
        {
            throw new BrokerStartupException(problems);
        }

        builder.Services.AddOptions<ConsoleOptions>().Bind(builder.Configuration.GetSection(ConsoleOptions.Section)).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<ConsoleOptions>, ConsoleOptionsValidator>();
        if (!console.IsEnabled(broker.Dev))
        {
            return builder;
        }

        ConsoleAuthentication.Add(builder.Services, broker, console);
        builder.Services.AddAntiforgery(antiforgery =>
        {
            antiforgery.Cookie.Name = "broker-console-csrf";
            antiforgery.Cookie.Path = ConsolePaths.Root;
            antiforgery.Cookie.SameSite = SameSiteMode.Strict;
            antiforgery.Cookie.HttpOnly = true;
            antiforgery.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
        });
        builder.Services.AddRazorPages(pages =>
        {
            pages.RootDirectory = "/Console/Pages";
            pages.Conventions.AuthorizeFolder("/", ConsoleAuthentication.SignedInPolicy);
            pages.Conventions.AllowAnonymousToPage("/SignIn");
            pages.Conventions.AllowAnonymousToPage("/DevSignIn");
            pages.Conventions.AllowAnonymousToPage("/SignedIn");
            if (!broker.Dev)
            {
                // Impossible outside --dev: the dev sign-in has no route at all.
                pages.Conventions.AddPageRouteModelConvention("/DevSignIn", route => route.Selectors.Clear());
            }
        })

        // Named explicitly: a host whose entry assembly is not Broker.Server (a test host) would not find the pages.
        .AddApplicationPart(typeof(ConsolePageModel).Assembly)
        .AddMvcOptions(mvc => mvc.Filters.Add<ConsoleAntiforgeryAudit>());
        builder.Services.AddSingleton<LiveTokens>();
        builder.Services.AddSingleton<ConsoleAuditView>();
        return builder;
    }

    /// <summary>Before authentication: the console's headers. Nothing when the console is off.</summary>
    public static WebApplication UseOperatorConsole(this WebApplication app)
    {
        if (IsEnabled(app))
        {
            app.UseConsoleSecurityHeaders();
        }

        return app;
    }

    public static WebApplication MapOperatorConsole(this WebApplication app)
    {
        if (!IsEnabled(app))
        {
            return app;
        }

        app.MapRazorPages();
        app.MapGet(ConsolePaths.Stylesheet, () => Results.Text(ConsoleStylesheet.Css, "text/css; charset=utf-8"));
        return app;
    }

    private static bool IsEnabled(WebApplication app)
    {
        var broker = app.Services.GetRequiredService<IOptions<BrokerOptions>>().Value;
        return app.Services.GetRequiredService<IOptions<ConsoleOptions>>().Value.IsEnabled(broker.Dev);
    }
}
