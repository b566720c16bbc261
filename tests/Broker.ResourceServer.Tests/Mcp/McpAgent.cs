using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using ModelContextProtocol.Client;

namespace Broker.ResourceServer.Tests.Mcp;

/// <summary>
/// What an agent with a workload identity does, with no Broker SDK: discover the authorization
/// server from the MCP server (RFC 9728, then RFC 8414), get a token with its JWT-SVID
/// (RFC 7523 jwt-bearer, RFC 8707 resource), and talk MCP with the MCP C# client.
/// </summary>
public sealed class McpAgent(string mcpUrl) : IDisposable
{
    public const string JwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer";

    private readonly HttpClient _http = new();

    /// <summary>The answers the MCP client's HTTP traffic got, newest last.</summary>
    public ResponseRecorder Responses { get; } = new();

    /// <summary>Unauthenticated, the MCP server answers 401 naming its metadata; the metadata names the authorization server.</summary>
    public async Task<Discovery> DiscoverAsync()
    {
        using var probe = new StringContent("""{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}""", Encoding.UTF8, "application/json");
        using var refused = await _http.PostAsync(mcpUrl, probe);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        var challenge = Assert.Single(refused.Headers.WwwAuthenticate);
        Assert.Equal("Bearer", challenge.Scheme);
        var metadataUrl = Parameter(challenge.ToString(), "resource_metadata") ?? throw new Xunit.Sdk.XunitException($"no resource_metadata in '{challenge}'");

        using var resource = JsonDocument.Parse(await _http.GetStringAsync(metadataUrl));
        var authorizationServer = resource.RootElement.GetProperty("authorization_servers").EnumerateArray().Single().GetString()!;
        using var server = JsonDocument.Parse(await _http.GetStringAsync(authorizationServer.TrimEnd('/') + "/.well-known/oauth-authorization-server"));
        return new Discovery(metadataUrl, resource.RootElement.Clone(), authorizationServer, server.RootElement.Clone());
    }

    /// <summary>POSTs the jwt-bearer grant to the discovered token endpoint; the JSON answer, whatever its status.</summary>
    public async Task<(HttpStatusCode Status, JsonElement Body)> RequestTokenAsync(Discovery discovery, string svid, string scope, string? task = null, string? phase = null)
    {
        var form = new Dictionary<string, string>
        {
            ["grant_type"] = JwtBearer,
            ["assertion"] = svid,
            ["resource"] = discovery.Resource,
            ["scope"] = scope,
        };
        if (task is not null || phase is not null)
        {
            var details = new Dictionary<string, string> { ["type"] = "agent_task" };
            if (task is not null)
            {
                details["task_id"] = task;
            }

            if (phase is not null)
            {
                details["phase"] = phase;
            }

            form["authorization_details"] = JsonSerializer.Serialize(new[] { details });
        }

        using var content = new FormUrlEncodedContent(form);
        using var response = await _http.PostAsync(discovery.TokenEndpoint, content);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return (response.StatusCode, body.RootElement.Clone());
    }

    /// <summary>A token, or the test fails with Broker's answer.</summary>
    public async Task<string> TokenAsync(Discovery discovery, string svid, string scope, string? task = null, string? phase = null)
    {
        var (status, body) = await RequestTokenAsync(discovery, svid, scope, task, phase);
        Assert.True(status == HttpStatusCode.OK, $"token endpoint answered {(int)status}: {body}");
        return body.GetProperty("access_token").GetString()!;
    }

    /// <summary>An MCP client over Streamable HTTP presenting <paramref name="accessToken"/> on every request.</summary>
    public Task<McpClient> ConnectAsync(string accessToken)
    {
        var transport = new HttpClientTransport(
            new HttpClientTransportOptions
            {
                Endpoint = new Uri(mcpUrl),
                TransportMode = HttpTransportMode.StreamableHttp,
                AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + accessToken },
            },
            new HttpClient(Responses.Wrap(new SocketsHttpHandler())),
            ownsHttpClient: true);
        return McpClient.CreateAsync(transport);
    }

    /// <summary>One auth-param of a challenge (quoted-string value).</summary>
    public static string? Parameter(string challenge, string name)
    {
        var marker = name + "=\"";
        var start = challenge.IndexOf(marker, StringComparison.Ordinal);
        if (start < 0)
        {
            return null;
        }

        start += marker.Length;
        var end = challenge.IndexOf('"', start);
        return end < 0 ? null : challenge[start..end];
    }

    public void Dispose() => _http.Dispose();
}

/// <summary>What discovery found: the MCP server's metadata and its authorization server's.</summary>
public sealed record Discovery(string ResourceMetadataUrl, JsonElement ResourceMetadata, string AuthorizationServer, JsonElement AuthorizationServerMetadata)
{
    public string Resource => ResourceMetadata.GetProperty("resource").GetString()!;

    public string TokenEndpoint => AuthorizationServerMetadata.GetProperty("token_endpoint").GetString()!;
}

/// <summary>Keeps the status and challenge of every response an HTTP client got.</summary>
public sealed class ResponseRecorder
{
    private readonly List<(HttpStatusCode Status, string? Challenge)> _responses = [];

    public (HttpStatusCode Status, string? Challenge) Last
    {
        get
        {
            lock (_responses)
            {
                return _responses[^1];
            }
        }
    }

    public HttpMessageHandler Wrap(HttpMessageHandler inner) => new Recording(this) { InnerHandler = inner };

    private sealed class Recording(ResponseRecorder recorder) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            lock (recorder._responses)
            {
                recorder._responses.Add((response.StatusCode, response.Headers.WwwAuthenticate.Select(h => h.ToString()).FirstOrDefault()));
            }

            return response;
        }
    }
}
