using System.Text.Json;
using Broker.Core.Signing;
using Broker.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Broker.Server.Endpoints;

/// <summary>
/// Discovery and JWKS, so a resource server sets <c>Authority</c> to the issuer and stock
/// JwtBearer validates Broker tokens offline. Discovery names only what Broker really serves:
/// the gRPC API is not in it; the OAuth front door (docs/oauth.md) is.
/// </summary>
internal static class WellKnownEndpoints
{
    public const string JwksPath = "/.well-known/jwks.json";

    public static IEndpointRouteBuilder MapWellKnown(this IEndpointRouteBuilder endpoints)
    {
        // One document under both names: RFC 8414 metadata for OAuth clients, OpenID
        // configuration for stock JwtBearer (which reads issuer and jwks_uri from it).
        endpoints.MapGet("/.well-known/openid-configuration", WriteMetadataAsync);
        endpoints.MapGet(OAuth.OAuthProtocol.MetadataPath, WriteMetadataAsync);

        endpoints.MapGet(JwksPath, (SigningKeyRing ring, TimeProvider time, HttpResponse response) =>
        {
            response.Headers.CacheControl = "public, max-age=300";
            return Results.Bytes(JwksWriter.Write(ring.Published(time.GetUtcNow())), JwksWriter.ContentType);
        });

        return endpoints;
    }

    private static async Task WriteMetadataAsync(IOptions<BrokerOptions> options, HttpResponse response)
    {
        var issuer = options.Value.Issuer;
        response.Headers.CacheControl = "public, max-age=300";
        response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(response.Body);
        writer.WriteStartObject();
        writer.WriteString("issuer", issuer);
        writer.WriteString("jwks_uri", issuer.TrimEnd('/') + JwksPath);
        OAuth.AuthorizationServerMetadata.Write(writer, issuer);
        writer.WriteEndObject();
        await writer.FlushAsync();
    }
}
