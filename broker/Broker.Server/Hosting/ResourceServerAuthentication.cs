using System.Security.Cryptography;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Server.Hosting;

/// <summary>
/// Registers the bearer scheme resource servers authenticate with (stock JwtBearer, never the
/// default scheme) and the <see cref="ResourceServerAuthenticator"/> every door calls. Like
/// operator tokens, Broker's own access tokens (<c>at+jwt</c>) never pass.
/// </summary>
internal static class ResourceServerAuthentication
{
    public const string Scheme = "ResourceServer";

    public static IServiceCollection AddResourceServerAuthentication(this IServiceCollection services, BrokerOptions broker, IConfiguration configuration)
    {
        var options = configuration.GetSection(ResourceServerOptions.Section).Get<ResourceServerOptions>() ?? new ResourceServerOptions();
        var problems = ResourceServerOptionsValidator.Problems(options, broker);
        if (problems.Count > 0)
        {
            throw new BrokerStartupException(problems);
        }

        if (broker.Dev && string.IsNullOrEmpty(options.Authority) && string.IsNullOrEmpty(options.KeyFile) && string.IsNullOrEmpty(broker.Operators.KeyFile) && !string.IsNullOrEmpty(broker.Operators.DevSigningKeyFile))
        {
            DevResourceServerToken.Write(broker, options);
        }

        services.AddSingleton<IValidateOptions<ResourceServerOptions>>(new ResourceServerOptionsValidator(broker));
        services.AddOptions<ResourceServerOptions>().Bind(configuration.GetSection(ResourceServerOptions.Section)).ValidateOnStart();
        services.AddSingleton<ResourceServerAuthenticator>();
        services.AddSingleton<Services.WatchStreamLimiter>();
        services.AddAuthentication().AddJwtBearer(Scheme, jwt =>
        {
            jwt.MapInboundClaims = false;
            var parameters = jwt.TokenValidationParameters;
            parameters.ValidAudience = options.Audience;
            parameters.RoleClaimType = options.RolesClaim;
            parameters.NameClaimType = options.NameClaim;
            parameters.ClockSkew = TimeSpan.FromSeconds(30);
            parameters.RequireExpirationTime = true;
            parameters.TypeValidator = (type, _, _) =>
                string.Equals(type, "at+jwt", StringComparison.OrdinalIgnoreCase)
                    ? throw new SecurityTokenInvalidTypeException("Access tokens minted by Broker are not resource-server credentials.")
                    : type ?? "JWT";
            if (!string.IsNullOrEmpty(options.KeyFile))
            {
                parameters.ValidIssuer = options.Issuer;
                parameters.IssuerSigningKey = LoadPublicKey(options.KeyFile);
            }
            else if (string.IsNullOrEmpty(options.Authority) && !string.IsNullOrEmpty(broker.Operators.KeyFile))
            {
                // No IdP at all: the operator keys also sign resource-server tokens (their own audience and role).
                parameters.ValidIssuer = broker.Operators.Issuer;
                parameters.IssuerSigningKeys = OperatorKeyFile.Load(broker.Operators.KeyFile);
                parameters.ValidAlgorithms = OperatorKeyFile.Algorithms;
            }
            else if (broker.Dev && string.IsNullOrEmpty(options.Authority) && !string.IsNullOrEmpty(broker.Operators.DevSigningKeyFile))
            {
                // --dev: the dev operator key stands in for the IdP, as it does for operators.
                parameters.ValidIssuer = broker.Operators.DevIssuer;
                parameters.IssuerSigningKey = Core.Signing.SigningKey.FromPemFile(broker.Operators.DevSigningKeyFile, DateTimeOffset.MinValue).Credentials.Key;
            }
            else
            {
                jwt.Authority = string.IsNullOrEmpty(options.Authority) ? broker.Operators.Authority : options.Authority;
                jwt.RequireHttpsMetadata = !Uri.TryCreate(jwt.Authority, UriKind.Absolute, out var authority) || !authority.IsLoopback;
            }
        });
        return services;
    }

    private static SecurityKey LoadPublicKey(string path)
    {
        var pem = File.ReadAllText(path);
        try
        {
            var ec = ECDsa.Create();
            ec.ImportFromPem(pem);
            return new ECDsaSecurityKey(ec);
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException)
        {
            try
            {
                var rsa = RSA.Create();
                rsa.ImportFromPem(pem);
                if (rsa.KeySize < 2048)
                {
                    throw new BrokerStartupException([$"BRK1072: Broker:ResourceServers:KeyFile '{path}' is an RSA key under 2048 bits."]);
                }

                return new RsaSecurityKey(rsa);
            }
            catch (Exception inner) when (inner is ArgumentException or CryptographicException)
            {
                throw new BrokerStartupException([$"BRK1072: Broker:ResourceServers:KeyFile '{path}' is not a PEM EC or RSA public key."]);
            }
        }
    }
}
