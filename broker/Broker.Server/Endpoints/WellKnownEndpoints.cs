using System.Text.Json;
using Broker.Core.Signing;
using Broker.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Broker.Server.Endpoints;

/// <summary>
/// Discovery and JWKS, so a resource server sets <c>Authority</c> to the issuer and stock
/// JwtBearer validates Broker tokens offline. Discovery names only what Broker really serves:
/// tokens come from the gRPC API, not from an OAuth token endpoint.
/// </summary>
internal static class WellKnownEndpoints
{
    public const string JwksPath = "/.well-known/jwks.json";

    public static IEndpointRouteBuilder MapWellKnown(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/.well-known/openid-configuration", (IOptions<BrokerOptions> options, HttpResponse response) =>
        {
            var issuer = options.Value.Issuer.TrimEnd('/');
            response.Headers.CacheControl = "public, max-age=300";
            return Results.Json(new Dictionary<string, object>
            {
                ["issuer"] = options.Value.Issuer,
                ["jwks_uri"] = issuer + JwksPath,
            });
        });

        endpoints.MapGet(JwksPath, async (SigningKeyRing ring, TimeProvider time, HttpResponse response) =>
        {
            var keys = ring.Published(time.GetUtcNow());
            response.Headers.CacheControl = "public, max-age=300";
            response.ContentType = "application/jwk-set+json";
            await using var writer = new Utf8JsonWriter(response.Body);
            writer.WriteStartObject();
            writer.WriteStartArray("keys");
            foreach (var key in keys)
            {
                writer.WriteStartObject();
                writer.WriteString("kty", key.Kty);
                writer.WriteString("crv", key.Crv);
                writer.WriteString("x", key.X);
                writer.WriteString("y", key.Y);
                writer.WriteString("kid", key.KeyId);
                writer.WriteString("use", key.Use);
                writer.WriteString("alg", key.Alg);
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
            await writer.FlushAsync();
        });

        return endpoints;
    }
}
