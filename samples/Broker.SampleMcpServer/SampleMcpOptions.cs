namespace Broker.SampleMcpServer;

/// <summary>
/// Where the brokers are and which resource this MCP server is, from the <c>Sample</c>
/// configuration section (command line, environment such as <c>Sample__Resource</c>, or an
/// appsettings.json). Checked at start: a missing or unsafe setting stops the process with an id
/// (SMC0xx) instead of relaxing a check.
/// </summary>
public sealed class SampleMcpOptions
{
    public const string Section = "Sample";

    /// <summary>The brokers' issuer (<c>Broker:Issuer</c>): the authorization server this server names in its metadata.</summary>
    public string Issuer { get; set; } = "";

    /// <summary>
    /// This MCP server's canonical URL, for example <c>https://mcp.example.org/mcp</c>: the
    /// <c>resource</c> of its RFC 9728 metadata, the <c>resource</c> (RFC 8707) agents ask Broker
    /// for, the <c>aud</c> of the tokens it accepts, and the path the MCP endpoint is served at.
    /// </summary>
    public string Resource { get; set; } = "";

    /// <summary>A broker gRPC address for <c>WatchRevocations</c> (behind a load balancer: any node).</summary>
    public string RevocationAddress { get; set; } = "";

    /// <summary>File holding this server's resource-server token for the revocation stream; read again at every reconnect.</summary>
    public string RevocationTokenFile { get; set; } = "";

    /// <summary>HTTPS for discovery, JWKS and the revocation stream, unless an address is loopback http (which <see cref="Problems"/> allows only there).</summary>
    public bool RequireHttpsMetadata => !(IsPlainHttp(Issuer) || IsPlainHttp(RevocationAddress));

    /// <summary><see cref="Resource"/> as a URI (valid once <see cref="Problems"/> is empty).</summary>
    public Uri ResourceUri => new(Resource, UriKind.Absolute);

    /// <summary>The MCP endpoint's path: the resource's path.</summary>
    public string McpPath => ResourceUri.AbsolutePath.TrimEnd('/');

    /// <summary>
    /// Where the protected resource metadata is (RFC 9728 §3.1): <c>/.well-known/oauth-protected-resource</c>
    /// inserted between the resource's host and its path.
    /// </summary>
    public Uri ResourceMetadataUri => new(ResourceUri.GetLeftPart(UriPartial.Authority) + "/.well-known/oauth-protected-resource" + McpPath, UriKind.Absolute);

    /// <summary>Every problem at once, each starting with its id; empty when the options are usable.</summary>
    public List<string> Problems()
    {
        var problems = new List<string>();
        if (!IsSafeUrl(Issuer))
        {
            problems.Add("SMC001: Sample:Issuer must be the brokers' issuer URL (absolute https; http only on loopback).");
        }

        if (!IsSafeUrl(Resource) || !string.IsNullOrEmpty(new Uri(Resource).Query) || !string.IsNullOrEmpty(new Uri(Resource).Fragment))
        {
            problems.Add("SMC002: Sample:Resource must be this MCP server's URL, the audience agents ask Broker for (absolute https, http only on loopback; no query or fragment).");
        }

        if (!IsSafeUrl(RevocationAddress))
        {
            problems.Add("SMC003: Sample:RevocationAddress must be a broker's gRPC address (absolute https; http only on loopback).");
        }

        if (string.IsNullOrWhiteSpace(RevocationTokenFile) || !File.Exists(RevocationTokenFile))
        {
            problems.Add($"SMC004: Sample:RevocationTokenFile must name the file holding this server's resource-server token ('{RevocationTokenFile}' does not exist); a --dev broker writes .dev/resource-server.token.");
        }

        return problems;
    }

    private static bool IsPlainHttp(string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttp;

    private static bool IsSafeUrl(string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri)
        && (uri.Scheme == Uri.UriSchemeHttps || (uri.Scheme == Uri.UriSchemeHttp && uri.IsLoopback));
}
