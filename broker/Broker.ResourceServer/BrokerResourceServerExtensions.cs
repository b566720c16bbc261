using Broker.ResourceServer.Internal;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Broker.ResourceServer;

/// <summary>Registers Broker token validation and the revocation stream.</summary>
public static class BrokerResourceServerExtensions
{
    /// <summary>
    /// The one-liner: JwtBearer for Broker tokens as the default scheme (<c>Bearer</c>), the
    /// revocation client, and authorization (for <see cref="BrokerAuthorizationExtensions.RequireBrokerScope{TBuilder}"/>
    /// and <see cref="BrokerAuthorizationExtensions.RequireBrokerPhase{TBuilder}"/>).
    /// </summary>
    public static IServiceCollection AddBrokerResourceServer(this IServiceCollection services, Action<BrokerJwtBearerOptions> configure)
    {
        services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme).AddBrokerJwtBearer(configure);
        services.AddAuthorization();
        return services;
    }

    /// <summary>Adds Broker token validation under the <c>Bearer</c> scheme. See <see cref="AddBrokerJwtBearer(AuthenticationBuilder, string, Action{BrokerJwtBearerOptions})"/>.</summary>
    public static AuthenticationBuilder AddBrokerJwtBearer(this AuthenticationBuilder builder, Action<BrokerJwtBearerOptions> configure) =>
        builder.AddBrokerJwtBearer(JwtBearerDefaults.AuthenticationScheme, configure);

    /// <summary>
    /// Adds stock JwtBearer configured for Broker access tokens: keys from the broker's discovery
    /// document and JWKS, <c>typ</c> must be <c>at+jwt</c>, the audience must be this server's,
    /// claims keep their JWT names, and every validated token is checked against the revocation
    /// index (a revoked token gets 401 <c>error_description="token revoked"</c>; while the
    /// revocation stream is stale, <see cref="BrokerJwtBearerOptions.StaleStance"/> decides).
    /// Sender-constrained tokens are held to their holder: <c>cnf.jkt</c> needs the
    /// <c>DPoP</c> scheme and a valid proof by that key (RFC 9449), <c>cnf.x5t#S256</c> the
    /// client certificate with that thumbprint (RFC 8705).
    /// Also registers <see cref="BrokerRevocationClient"/> as a hosted service. One Broker scheme
    /// per application. Options are checked at start-up.
    /// </summary>
    /// <param name="builder">The authentication builder.</param>
    /// <param name="scheme">The authentication scheme name.</param>
    /// <param name="configure">Sets the broker's issuer, this server's audience and the revocation address.</param>
    public static AuthenticationBuilder AddBrokerJwtBearer(this AuthenticationBuilder builder, string scheme, Action<BrokerJwtBearerOptions> configure)
    {
        ArgumentException.ThrowIfNullOrEmpty(scheme);
        ArgumentNullException.ThrowIfNull(configure);
        var services = builder.Services;
        if (services.Any(d => d.ServiceType == typeof(BrokerSchemeMarker)))
        {
            throw new InvalidOperationException("AddBrokerJwtBearer was already called: one Broker scheme per application (one revocation stream).");
        }

        services.AddSingleton(new BrokerSchemeMarker(scheme));
        services.AddOptions<BrokerJwtBearerOptions>().Configure(configure).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<BrokerJwtBearerOptions>, BrokerJwtBearerOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<BrokerRevocationClient>();
        services.AddHostedService(sp => sp.GetRequiredService<BrokerRevocationClient>());
        services.TryAddSingleton<BrokerTokenCheck>();
        services.TryAddSingleton<SenderConstraintCheck>();

        builder.AddJwtBearer(scheme, _ => { });
        services.AddOptions<JwtBearerOptions>(scheme).Configure<IOptions<BrokerJwtBearerOptions>, BrokerTokenCheck, SenderConstraintCheck>((jwt, brokerOptions, check, binding) =>
        {
            var broker = brokerOptions.Value;
            jwt.Authority = broker.Authority;
            jwt.Audience = broker.Audience;
            jwt.RequireHttpsMetadata = broker.RequireHttpsMetadata;
            jwt.MapInboundClaims = false;
            var parameters = jwt.TokenValidationParameters;
            parameters.ValidTypes = ["at+jwt"];
            parameters.ValidAudience = broker.Audience;
            parameters.ClockSkew = broker.ClockSkew;
            parameters.NameClaimType = BrokerClaimTypes.Subject;
            parameters.RequireExpirationTime = true;
            parameters.RequireSignedTokens = true;
            check.Attach(jwt, broker.MaxTokenLifetime);
            binding.Attach(jwt, broker.ClockSkew);
        });
        return builder;
    }

    /// <summary>Adds a health check that is healthy while the revocation state is current, unhealthy otherwise (use it for readiness).</summary>
    public static IHealthChecksBuilder AddBrokerRevocationCheck(this IHealthChecksBuilder builder, string name = "broker-revocation") =>
        builder.AddCheck<BrokerRevocationHealthCheck>(name);

    internal sealed record BrokerSchemeMarker(string Scheme);
}

/// <summary>Healthy while <see cref="BrokerRevocationClient.IsCurrent"/>.</summary>
internal sealed class BrokerRevocationHealthCheck(BrokerRevocationClient client) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(client.IsCurrent
            ? HealthCheckResult.Healthy($"Revocation state confirmed at {client.LastConfirmed:O}.")
            : HealthCheckResult.Unhealthy(client.LastConfirmed is { } at ? $"Revocation state last confirmed at {at:O}." : "Revocation state never confirmed."));
}

/// <summary>Endpoint and policy requirements on Broker token scopes and phase.</summary>
public static class BrokerAuthorizationExtensions
{
    /// <summary>Requires every one of <paramref name="scopes"/> in the token's <c>scope</c> claim (exact match).</summary>
    public static AuthorizationPolicyBuilder RequireBrokerScope(this AuthorizationPolicyBuilder builder, params string[] scopes) =>
        builder.RequireAuthenticatedUser().AddRequirements(new BrokerScopeRequirement(scopes));

    /// <summary>Requires the token's <c>phase</c> claim to be <paramref name="phase"/> (planning, execution or recovery).</summary>
    public static AuthorizationPolicyBuilder RequireBrokerPhase(this AuthorizationPolicyBuilder builder, string phase) =>
        builder.RequireAuthenticatedUser().AddRequirements(new BrokerPhaseRequirement(phase));

    /// <summary>
    /// The endpoint needs a Broker token holding every one of <paramref name="scopes"/>: 401
    /// without a valid token, 403 when a scope is missing. Combines with other requirements.
    /// </summary>
    public static TBuilder RequireBrokerScope<TBuilder>(this TBuilder builder, params string[] scopes)
        where TBuilder : IEndpointConventionBuilder =>
        builder.RequireAuthorization(new AuthorizationPolicyBuilder().RequireBrokerScope(scopes).Build());

    /// <summary>
    /// The endpoint needs a Broker token for <paramref name="phase"/>: 401 without a valid token,
    /// 403 for another phase. Combines with other requirements.
    /// </summary>
    public static TBuilder RequireBrokerPhase<TBuilder>(this TBuilder builder, string phase)
        where TBuilder : IEndpointConventionBuilder =>
        builder.RequireAuthorization(new AuthorizationPolicyBuilder().RequireBrokerPhase(phase).Build());
}
