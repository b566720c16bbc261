using Broker.Core.Audit;
using Broker.Core.Policy;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Server.Hosting;

/// <summary>
/// Operators authenticate with bearer tokens from the organisation's IdP, or signed by a key in
/// <c>Broker:Operators:KeyFile</c> (stock JwtBearer either way: one scheme, one set of checks).
/// Agent credentials can never pass: the issuer and keys are the IdP's or the operators', never
/// Broker's, and a token typed <c>at+jwt</c> is refused outright. Failures are audited.
/// </summary>
internal static class OperatorAuthentication
{
    public static IServiceCollection AddOperatorAuthentication(this IServiceCollection services, BrokerOptions broker)
    {
        var operators = broker.Operators;
        var trustedKeys = string.IsNullOrWhiteSpace(operators.KeyFile) ? null : OperatorKeyFile.Load(operators.KeyFile);
        services.AddAuthentication()
            .AddJwtBearer(OperatorRoles.Scheme, options =>
            {
                options.MapInboundClaims = false;
                options.TokenValidationParameters.ValidAudience = operators.Audience;
                options.TokenValidationParameters.RoleClaimType = operators.RolesClaim;
                options.TokenValidationParameters.NameClaimType = operators.NameClaim;
                options.TokenValidationParameters.ClockSkew = broker.ClockSkew;
                options.TokenValidationParameters.TypeValidator = (type, _, _) =>
                    string.Equals(type, "at+jwt", StringComparison.OrdinalIgnoreCase)
                        ? throw new SecurityTokenInvalidTypeException("Access tokens minted by Broker are not operator credentials.")
                        : type ?? "JWT";
                if (trustedKeys is not null)
                {
                    // Key trust: the same scheme and checks, with pinned keys instead of discovery.
                    options.TokenValidationParameters.ValidIssuer = operators.Issuer;
                    options.TokenValidationParameters.IssuerSigningKeys = trustedKeys;
                    options.TokenValidationParameters.ValidAlgorithms = OperatorKeyFile.Algorithms;
                }
                else if (broker.Dev && !string.IsNullOrEmpty(operators.DevSigningKeyFile))
                {
                    var key = Core.Signing.SigningKey.FromPemFile(operators.DevSigningKeyFile, DateTimeOffset.MinValue);
                    options.TokenValidationParameters.ValidIssuer = operators.DevIssuer;
                    options.TokenValidationParameters.IssuerSigningKey = key.Credentials.Key;
                }
                else
                {
                    options.Authority = operators.Authority;
                    options.RequireHttpsMetadata = !Uri.TryCreate(operators.Authority, UriKind.Absolute, out var authority) || !authority.IsLoopback;
                }

                options.Events = new JwtBearerEvents
                {
                    OnAuthenticationFailed = context => AuditAsync(context.HttpContext, context.Exception.GetType().Name),
                    OnForbidden = context => AuditAsync(context.HttpContext, "ROLE_MISSING"),
                };
            });

        services.AddSingleton<Microsoft.AspNetCore.Authorization.IAuthorizationMiddlewareResultHandler, OperatorRefusals>();
        services.AddAuthorizationBuilder()
            .AddPolicy(OperatorRoles.Responder, p => p.AddAuthenticationSchemes(OperatorRoles.Scheme).RequireRole(OperatorRoles.Responder))
            .AddPolicy(OperatorRoles.Approver, p => p.AddAuthenticationSchemes(OperatorRoles.Scheme).RequireRole(OperatorRoles.Approver))
            .AddPolicy(OperatorRoles.IamAdmin, p => p.AddAuthenticationSchemes(OperatorRoles.Scheme).RequireRole(OperatorRoles.IamAdmin))
            .AddPolicy(OperatorRoles.Auditor, p => p.AddAuthenticationSchemes(OperatorRoles.Scheme).RequireRole(OperatorRoles.Auditor))
            .AddPolicy(OperatorRoles.TelemetryReader, p => p.AddAuthenticationSchemes(OperatorRoles.Scheme).RequireRole(OperatorRoles.TelemetryReader))
            .AddPolicy("responder-or-auditor", p => p.AddAuthenticationSchemes(OperatorRoles.Scheme).RequireRole(OperatorRoles.Responder, OperatorRoles.Auditor));
        return services;
    }

    /// <summary>The operator's name for audit records.</summary>
    public static string ActorOf(HttpContext context, OperatorOptions options) =>
        context.User.FindFirst(options.NameClaim)?.Value is { Length: > 0 } name ? "operator:" + name : "operator:unknown";

    /// <summary>Name and groups from the operator's claims (name claim, roles/groups claim), for approvals.</summary>
    public static Broker.Core.Approvals.Approver ApproverOf(System.Security.Claims.ClaimsPrincipal user, OperatorOptions options)
    {
        var name = user.FindFirst(options.NameClaim)?.Value;
        if (string.IsNullOrEmpty(name))
        {
            throw Broker.Core.Errors.BrokerErrors.PermissionDenied(Broker.Core.Errors.BrokerErrors.ApproverNotEligible, "The operator token names no one; approvals need a named approver.");
        }

        return new Broker.Core.Approvals.Approver(name, user.FindAll(options.RolesClaim).Select(c => c.Value).ToHashSet(StringComparer.Ordinal));
    }

    /// <summary>
    /// Where a refused operator call past its address's refusal budget keeps the <c>RATE_LIMITED</c>
    /// refusal, for <see cref="OperatorRefusals"/> to answer with instead of its usual status.
    /// </summary>
    internal static readonly object RateLimitedItem = new();

    /// <summary>Audits a refused operator (also used by the web console), within the address's refusal budget.</summary>
    internal static async Task AuditAsync(HttpContext context, string reason)
    {
        var refusals = context.RequestServices.GetRequiredService<Core.Refusals.RefusalAuditor>();
        var policy = context.RequestServices.GetRequiredService<IPolicyProvider>();
        var time = context.RequestServices.GetRequiredService<TimeProvider>();
        try
        {
            var limited = await refusals.AuditAsync(
                new AuditEvent
                {
                    EventId = AuditEventTypes.OperatorAuthenticationFailed.Id,
                    Type = AuditEventTypes.OperatorAuthenticationFailed.Name,
                    Time = time.GetUtcNow(),
                    CorrelationId = Guid.NewGuid().ToString("N"),
                    PolicyDigest = policy.Current.Digest,
                    Outcome = AuditOutcomes.Failure,
                    Reason = reason,
                    Detail = context.Request.Path,
                    Peer = context.Connection.RemoteIpAddress?.ToString(),
                },
                Core.Refusals.RefusalSource.FromPeer(Core.Refusals.RefusalDoors.Operator, context.Connection.RemoteIpAddress?.ToString()),
                context.RequestAborted);
            if (limited is not null)
            {
                context.Items[RateLimitedItem] = limited;
            }
        }
        catch (OperationCanceledException)
        {
            // The caller went away; the call is refused either way.
        }
    }
}
