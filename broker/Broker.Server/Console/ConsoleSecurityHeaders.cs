namespace Broker.Server.OperatorConsole;

/// <summary>
/// Headers on every console response: a strict Content-Security-Policy (no script at all, styles
/// only from the console's own stylesheet, forms only to itself, never framed), no caching of
/// pages that show live security state, no referrer, no MIME sniffing.
/// </summary>
internal static class ConsoleSecurityHeaders
{
    public const string ContentSecurityPolicy =
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

    public static IApplicationBuilder UseConsoleSecurityHeaders(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        if (ConsolePaths.IsConsole(context.Request.Path))
        {
            context.Response.OnStarting(() =>
            {
                var headers = context.Response.Headers;
                headers.ContentSecurityPolicy = ContentSecurityPolicy;
                headers.XContentTypeOptions = "nosniff";
                headers.XFrameOptions = "DENY";
                headers["Referrer-Policy"] = "no-referrer";
                headers["Cross-Origin-Opener-Policy"] = "same-origin";
                if (context.Request.Path != ConsolePaths.Stylesheet)
                {
                    headers.CacheControl = "no-store";
                }

                return Task.CompletedTask;
            });
        }

        await next(context);
    });
}
