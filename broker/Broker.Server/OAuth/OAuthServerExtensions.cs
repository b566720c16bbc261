using Broker.Core.Diagnostics;
using Broker.Core.Issuance;
using Broker.Core.Signing;
using Broker.Core.State;
using Broker.Jose;
using Microsoft.Extensions.Options;

namespace Broker.Server.OAuth;

/// <summary>The OAuth front door: a second way into the same issuer, not a second policy path.</summary>
internal static class OAuthServerExtensions
{
    /// <summary>Registers the endpoints' services; a bad <c>Broker:OAuth</c> setting stops start-up with its BRK id.</summary>
    public static IServiceCollection AddBrokerOAuth(this IServiceCollection services, IConfiguration configuration)
    {
        var settings = configuration.GetSection(OAuthOptions.Section).Get<OAuthOptions>() ?? new OAuthOptions();
        if (new OAuthOptionsValidator().Validate(null, settings) is { Failed: true } check)
        {
            throw new Hosting.BrokerStartupException([.. check.Failures]);
        }

        services.AddOptions<OAuthOptions>().BindConfiguration(OAuthOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<OAuthOptions>, OAuthOptionsValidator>();
        services.AddSingleton<OAuthTransport>();
        services.AddSingleton<ApprovalPolls>();
        services.AddSingleton<OAuthEndpointRunner>();
        services.AddSingleton(sp =>
        {
            var skew = sp.GetRequiredService<IOptions<Hosting.BrokerOptions>>().Value.ClockSkew;
            var time = sp.GetRequiredService<TimeProvider>();
            var nonces = new DpopNonces(sp.GetRequiredService<SigningKeyRing>().DeriveSharedSecret("dpop-nonce v1"), time);
            return new DpopVerifier(new DpopProofReader(skew), nonces, settings.Dpop, sp.GetRequiredService<ICredentialStore>(), sp.GetRequiredService<BrokerMetrics>(), time, skew);
        });
        services.AddSingleton<TokenEndpoint>();
        services.AddSingleton<IntrospectionEndpoint>();
        services.AddSingleton<RevocationEndpoint>();
        return services;
    }

    public static IEndpointRouteBuilder MapBrokerOAuth(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost(OAuthProtocol.TokenPath, (HttpContext context, TokenEndpoint token) => token.HandleAsync(context));
        endpoints.MapPost(OAuthProtocol.IntrospectionPath, (HttpContext context, IntrospectionEndpoint introspection) => introspection.HandleAsync(context));
        endpoints.MapPost(OAuthProtocol.RevocationPath, (HttpContext context, RevocationEndpoint revocation) => revocation.HandleAsync(context));
        return endpoints;
    }
}
