using Broker.Core.Errors;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Broker.Server.Hosting;

/// <summary>A resource server that proved itself: its issuer and name (the unit stream caps count by).</summary>
public sealed record ResourceServerCaller(string Issuer, string Name)
{
    /// <summary>One key per resource server across issuers.</summary>
    public string Key => Issuer + " " + Name;
}

/// <summary>
/// The one check every resource-server door makes (the gRPC revocation channel, and HTTP
/// introspection): a bearer token from the configured issuer, for the resource-server audience,
/// with the resource-server role. Refusals are <see cref="BrokerException"/>s with a reason;
/// they are not audited one by one (the caller has proven nothing), so a flood cannot fill the log.
/// </summary>
public sealed class ResourceServerAuthenticator
{
    private readonly ResourceServerOptions _options;

    public ResourceServerAuthenticator(IOptions<ResourceServerOptions> options) => _options = options.Value;

    /// <summary>Authenticates the request's <c>Authorization: Bearer</c> token, or throws UNAUTHENTICATED / PERMISSION_DENIED.</summary>
    public async Task<ResourceServerCaller> AuthenticateAsync(HttpContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            throw BrokerErrors.Unauthenticated(BrokerErrors.ResourceServerTokenMissing, "Resource servers authenticate with 'authorization: Bearer <resource-server token>' (docs/resource-server.md).");
        }

        var result = await context.AuthenticateAsync(ResourceServerAuthentication.Scheme);
        if (!result.Succeeded || result.Principal is not { } principal)
        {
            throw BrokerErrors.Unauthenticated(BrokerErrors.ResourceServerTokenInvalid, "The resource-server token was not accepted (issuer, audience, signature, type or lifetime).");
        }

        if (!principal.IsInRole(_options.Role))
        {
            throw BrokerErrors.PermissionDenied(BrokerErrors.ResourceServerRoleMissing, $"The token lacks the '{_options.Role}' role.");
        }

        var name = principal.FindFirst(_options.NameClaim)?.Value
            ?? principal.FindFirst("client_id")?.Value
            ?? principal.FindFirst("azp")?.Value;
        if (string.IsNullOrEmpty(name))
        {
            throw BrokerErrors.Unauthenticated(BrokerErrors.ResourceServerTokenInvalid, $"The resource-server token names no caller ({_options.NameClaim}, client_id or azp).");
        }

        return new ResourceServerCaller(principal.FindFirst("iss")?.Value ?? "", name);
    }
}
