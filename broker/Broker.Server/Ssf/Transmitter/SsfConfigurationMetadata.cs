using System.Text.Json;
using Broker.Core.Ssf.Transmitter;
using Broker.Server.Endpoints;

namespace Broker.Server.Ssf.Transmitter;

/// <summary>
/// Transmitter configuration metadata (SSF 1.0 section 6.1) at
/// <c>/.well-known/ssf-configuration</c>. It names only what this node serves: no status or
/// subject endpoints (every stream carries every revocation; there is nothing to add or remove).
/// </summary>
internal static class SsfConfigurationMetadata
{
    public static async Task WriteAsync(HttpResponse response, string issuer)
    {
        var root = issuer.TrimEnd('/');
        response.Headers.CacheControl = "public, max-age=300";
        response.ContentType = "application/json";
        await using var w = new Utf8JsonWriter(response.Body);
        w.WriteStartObject();
        w.WriteString("spec_version", "1_0");
        w.WriteString("issuer", issuer);
        w.WriteString("jwks_uri", root + WellKnownEndpoints.JwksPath);
        SsfStreamJson.WriteArray(w, "delivery_methods_supported", SsfDelivery.Supported);
        w.WriteString("configuration_endpoint", root + SsfTransmitterPaths.Streams);
        w.WriteString("verification_endpoint", root + SsfTransmitterPaths.Verification);

        // Receivers authenticate with a resource-server bearer token (RFC 6750), as at introspection.
        w.WriteStartArray("authorization_schemes");
        w.WriteStartObject();
        w.WriteString("spec_urn", "urn:ietf:rfc:6750");
        w.WriteEndObject();
        w.WriteEndArray();

        // Every revocation reaches every stream: the receiver need not name subjects first.
        w.WriteString("default_subjects", "ALL");
        w.WriteEndObject();
        await w.FlushAsync();
    }
}
