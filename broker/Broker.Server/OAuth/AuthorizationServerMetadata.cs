using System.Text.Json;

namespace Broker.Server.OAuth;

/// <summary>
/// RFC 8414 metadata, also merged into the OpenID configuration. It names exactly what this
/// node serves: each entry here has an endpoint or behaviour behind it, and a test checks both.
/// </summary>
internal static class AuthorizationServerMetadata
{
    public static readonly string[] GrantTypes = [OAuthProtocol.TokenExchangeGrant, OAuthProtocol.JwtBearerGrant];

    /// <summary>
    /// No client secret exists: the workload credential in the grant is the proof (<c>none</c>),
    /// or the X.509-SVID presented over mutual TLS (<c>tls_client_auth</c>, RFC 8705).
    /// </summary>
    public static readonly string[] TokenEndpointAuthMethods = ["none", "tls_client_auth"];

    public static void Write(Utf8JsonWriter writer, string issuer)
    {
        var root = issuer.TrimEnd('/');
        writer.WriteString("token_endpoint", root + OAuthProtocol.TokenPath);
        writer.WriteString("introspection_endpoint", root + OAuthProtocol.IntrospectionPath);
        writer.WriteString("revocation_endpoint", root + OAuthProtocol.RevocationPath);
        WriteArray(writer, "grant_types_supported", GrantTypes);
        WriteArray(writer, "token_endpoint_auth_methods_supported", TokenEndpointAuthMethods);

        // Resource servers introspect with a resource-server bearer token (docs/resource-server.md).
        WriteArray(writer, "introspection_endpoint_auth_methods_supported", ["bearer"]);

        // Responders revoke with an operator bearer token; agents with the proof they hold.
        WriteArray(writer, "revocation_endpoint_auth_methods_supported", ["bearer", "private_key_jwt", "tls_client_auth"]);

        // No authorization endpoint: agents are workloads, there is no browser redirect.
        WriteArray(writer, "response_types_supported", []);
        WriteArray(writer, "authorization_details_types_supported", [OAuthProtocol.AgentTaskType]);

        // A DPoP proof at the token endpoint binds the token to its key (cnf.jkt, RFC 9449).
        WriteArray(writer, "dpop_signing_alg_values_supported", Jose.DpopProofReader.Algorithms);

        // Tokens obtained over mutual TLS carry cnf.x5t#S256 (RFC 8705 section 3).
        writer.WriteBoolean("tls_client_certificate_bound_access_tokens", true);
    }

    private static void WriteArray(Utf8JsonWriter writer, string name, IEnumerable<string> values)
    {
        writer.WriteStartArray(name);
        foreach (var value in values)
        {
            writer.WriteStringValue(value);
        }

        writer.WriteEndArray();
    }
}
