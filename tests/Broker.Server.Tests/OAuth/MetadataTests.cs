using System.Net;
using System.Text.Json;
using Broker.Server.Tests.Infrastructure;

namespace Broker.Server.Tests.OAuth;

/// <summary>RFC 8414 metadata names exactly what is served, and the same under the OpenID configuration.</summary>
public sealed class MetadataTests : IAsyncLifetime
{
    private OAuthScenario _oauth = null!;

    public async Task InitializeAsync() => _oauth = await OAuthScenario.StartAsync();

    public async Task DisposeAsync() => await _oauth.DisposeAsync();

    [Fact]
    public async Task Metadata_lists_exactly_the_served_endpoints_grants_and_details_types()
    {
        var metadata = JsonDocument.Parse(await _oauth.Http.GetStringAsync("/.well-known/oauth-authorization-server")).RootElement;
        var openid = JsonDocument.Parse(await _oauth.Http.GetStringAsync("/.well-known/openid-configuration")).RootElement;
        var issuer = _oauth.Broker.Host.Issuer;

        Assert.Equal(metadata.GetRawText(), openid.GetRawText());
        Assert.Equal(issuer, metadata.GetProperty("issuer").GetString());
        Assert.Equal(issuer + "/oauth2/token", metadata.GetProperty("token_endpoint").GetString());
        Assert.Equal(issuer + "/oauth2/introspect", metadata.GetProperty("introspection_endpoint").GetString());
        Assert.Equal(issuer + "/oauth2/revoke", metadata.GetProperty("revocation_endpoint").GetString());
        Assert.Equal(
            ["urn:ietf:params:oauth:grant-type:token-exchange", "urn:ietf:params:oauth:grant-type:jwt-bearer"],
            metadata.GetProperty("grant_types_supported").EnumerateArray().Select(g => g.GetString()));
        Assert.Equal(["agent_task"], metadata.GetProperty("authorization_details_types_supported").EnumerateArray().Select(g => g.GetString()));
        Assert.True(metadata.GetProperty("tls_client_certificate_bound_access_tokens").GetBoolean());
        Assert.Empty(metadata.GetProperty("response_types_supported").EnumerateArray());

        // Nothing is advertised that is not served.
        Assert.False(metadata.TryGetProperty("authorization_endpoint", out _));
        Assert.Equal(["ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"], metadata.GetProperty("dpop_signing_alg_values_supported").EnumerateArray().Select(a => a.GetString()));
        foreach (var endpoint in metadata.EnumerateObject().Where(p => p.Name.EndsWith("_endpoint", StringComparison.Ordinal)))
        {
            using var content = new FormUrlEncodedContent([]);
            using var response = await _oauth.Http.PostAsync(new Uri(endpoint.Value.GetString()!).PathAndQuery, content);
            Assert.NotEqual(HttpStatusCode.NotFound, response.StatusCode);
            Assert.NotEqual(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        }

        // Every grant type listed is accepted (refused for its proof, not for its type).
        foreach (var grant in metadata.GetProperty("grant_types_supported").EnumerateArray())
        {
            var answer = await _oauth.TokenAsync(new Dictionary<string, string?> { ["grant_type"] = grant.GetString() });
            Assert.Equal("ATTESTATION_MISSING", answer.Reason);
        }
    }
}
