using Broker.Server.Hosting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Server.OperatorConsole;

/// <summary>
/// Console sessions: a SameSite=Strict, HttpOnly cookie holding only the operator's name and
/// roles (claim types <see cref="OperatorOptions.NameClaim"/> and
/// <see cref="OperatorOptions.RolesClaim"/>, as in operator tokens, so every domain call sees
/// the same operator as through the API). In production the cookie is issued after an OIDC
/// authorization code + PKCE sign-in at the operator Authority; no IdP token is kept.
/// </summary>
internal static class ConsoleAuthentication
{
    public const string CookieScheme = "OperatorConsole";
    public const string OidcScheme = "OperatorConsoleOidc";
    public const string CookieName = "broker-console";
    public const string CallbackPath = "/console/signin-oidc";

    public const string ApproverPolicy = "console:" + OperatorRoles.Approver;
    public const string ResponderPolicy = "console:" + OperatorRoles.Responder;
    public const string AuditorPolicy = "console:" + OperatorRoles.Auditor;
    public const string ResponderOrAuditorPolicy = "console:responder-or-auditor";
    public const string SignedInPolicy = "console:signed-in";

    public static void Add(IServiceCollection services, BrokerOptions broker, ConsoleOptions console)
    {
        var operators = broker.Operators;
        var authentication = services.AddAuthentication().AddCookie(CookieScheme, cookie =>
        {
            cookie.Cookie.Name = CookieName;
            cookie.Cookie.Path = ConsolePaths.Root;
            cookie.Cookie.HttpOnly = true;
            cookie.Cookie.SameSite = SameSiteMode.Strict;
            cookie.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            cookie.ExpireTimeSpan = console.SessionLifetime;
            cookie.SlidingExpiration = false;
            cookie.LoginPath = ConsolePaths.SignIn;
            cookie.AccessDeniedPath = ConsolePaths.Denied;
            cookie.ReturnUrlParameter = "returnUrl";
            cookie.Events.OnRedirectToAccessDenied = async context =>
            {
                // The same record the API writes when a token lacks the method's role.
                await ConsoleAudit.AuthenticationFailedAsync(context.HttpContext, "ROLE_MISSING");
                context.Response.Redirect(context.RedirectUri);
            };
        });

        if (!broker.Dev)
        {
            authentication.AddOpenIdConnect(OidcScheme, oidc =>
            {
                oidc.SignInScheme = CookieScheme;
                oidc.Authority = operators.Authority;
                oidc.RequireHttpsMetadata = !Uri.TryCreate(operators.Authority, UriKind.Absolute, out var authority) || !authority.IsLoopback;
                oidc.ClientId = console.ClientId;
                if (!string.IsNullOrWhiteSpace(console.ClientSecretFile))
                {
                    oidc.ClientSecret = File.ReadAllText(console.ClientSecretFile).Trim();
                }

                oidc.ResponseType = OpenIdConnectResponseType.Code;
                oidc.UsePkce = true;

                // A query response is a top-level GET back to the console, which Lax correlation
                // and nonce cookies survive without SameSite=None.
                oidc.ResponseMode = OpenIdConnectResponseMode.Query;
                oidc.CorrelationCookie.SameSite = SameSiteMode.Lax;
                oidc.NonceCookie.SameSite = SameSiteMode.Lax;
                oidc.CorrelationCookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                oidc.NonceCookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                oidc.CallbackPath = CallbackPath;
                oidc.SaveTokens = false;
                oidc.MapInboundClaims = false;
                oidc.GetClaimsFromUserInfoEndpoint = false;
                oidc.Scope.Clear();
                oidc.Scope.Add(OpenIdConnectScope.OpenId);
                foreach (var scope in console.Scopes)
                {
                    oidc.Scope.Add(scope);
                }

                oidc.TokenValidationParameters.NameClaimType = operators.NameClaim;
                oidc.TokenValidationParameters.RoleClaimType = operators.RolesClaim;
                oidc.TokenValidationParameters.TypeValidator = (type, _, _) =>
                    string.Equals(type, "at+jwt", StringComparison.OrdinalIgnoreCase)
                        ? throw new SecurityTokenInvalidTypeException("Access tokens are not ID tokens.")
                        : type ?? "JWT";
                oidc.Events = new OpenIdConnectEvents
                {
                    OnTicketReceived = async context =>
                    {
                        // The session cookie is SameSite=Strict, so it is not sent on the rest of
                        // the IdP's cross-site redirect chain: land on a page that moves on by a
                        // same-site navigation.
                        context.ReturnUri = ConsolePaths.SignedIn + "?to=" + Uri.EscapeDataString(ConsoleRedirects.Local(context.ReturnUri));
                        await ConsoleAudit.SignedInAsync(context.HttpContext, context.Principal!, "oidc");
                    },
                    OnRemoteFailure = async context =>
                    {
                        await ConsoleAudit.AuthenticationFailedAsync(context.HttpContext, context.Failure?.GetType().Name ?? "OIDC_FAILED");
                        context.Response.Redirect(ConsolePaths.SignIn + "?failed=1");
                        context.HandleResponse();
                    },
                };
            });
        }

        services.AddAuthorizationBuilder()
            .AddPolicy(SignedInPolicy, p => p.AddAuthenticationSchemes(CookieScheme).RequireAuthenticatedUser())
            .AddPolicy(ApproverPolicy, p => p.AddAuthenticationSchemes(CookieScheme).RequireRole(OperatorRoles.Approver))
            .AddPolicy(ResponderPolicy, p => p.AddAuthenticationSchemes(CookieScheme).RequireRole(OperatorRoles.Responder))
            .AddPolicy(AuditorPolicy, p => p.AddAuthenticationSchemes(CookieScheme).RequireRole(OperatorRoles.Auditor))
            .AddPolicy(ResponderOrAuditorPolicy, p => p.AddAuthenticationSchemes(CookieScheme).RequireRole(OperatorRoles.Responder, OperatorRoles.Auditor));
    }

    /// <summary>A session principal with the operator claim types (dev sign-in).</summary>
    public static System.Security.Claims.ClaimsPrincipal Principal(OperatorOptions operators, string name, IEnumerable<string> roles)
    {
        var identity = new System.Security.Claims.ClaimsIdentity(CookieScheme, operators.NameClaim, operators.RolesClaim);
        identity.AddClaim(new System.Security.Claims.Claim(operators.NameClaim, name));
        foreach (var role in roles)
        {
            identity.AddClaim(new System.Security.Claims.Claim(operators.RolesClaim, role));
        }

        return new System.Security.Claims.ClaimsPrincipal(identity);
    }

    public static Task SignInAsync(HttpContext context, System.Security.Claims.ClaimsPrincipal principal) =>
        context.SignInAsync(CookieScheme, principal, new AuthenticationProperties { IsPersistent = false });
}
