namespace Broker.SampleResourceServer;

/// <summary>
/// Where the brokers are and who this API is, from the <c>Sample</c> configuration section
/// (appsettings.json or environment variables such as <c>Sample__Issuer</c>). Checked at start:
/// a missing or unsafe setting stops the process with an id (SRS0xx) instead of relaxing a check.
/// </summary>
public sealed class SampleOptions
{
    public const string Section = "Sample";

    /// <summary>The brokers' issuer (the <c>iss</c> of their tokens); discovery and JWKS come from it.</summary>
    public string Issuer { get; set; } = "";

    /// <summary>This API's audience: agents ask the broker for tokens with this <c>--audience</c>.</summary>
    public string Audience { get; set; } = "";

    /// <summary>A broker gRPC address for <c>WatchRevocations</c> (behind a load balancer: any node).</summary>
    public string RevocationAddress { get; set; } = "";

    /// <summary>
    /// File holding this API's resource-server token for the revocation stream (from your IdP:
    /// the brokers' resource-server audience and role; read again at every reconnect). A
    /// <c>--dev</c> broker writes one to <c>.dev/resource-server.token</c>.
    /// </summary>
    public string RevocationTokenFile { get; set; } = "";

    /// <summary>Optional PEM of a private CA that signed the brokers' TLS certificates.</summary>
    public string CaCertificatePath { get; set; } = "";

    /// <summary>
    /// Optional local port that serves <c>/healthz</c> and nothing else: a plain-HTTP port for a
    /// container health check, on which no bearer token is ever accepted. 0: none.
    /// </summary>
    public int HealthOnlyPort { get; set; }

    /// <summary>
    /// HTTPS for discovery, JWKS and the revocation stream, unless an address is plain http,
    /// which <see cref="Problems"/> accepts only on loopback (a cluster on this machine). There is
    /// no setting that turns it off.
    /// </summary>
    public bool RequireHttpsMetadata => !(IsPlainHttp(Issuer) || IsPlainHttp(RevocationAddress));

    /// <summary>Every problem at once, each starting with its id; empty when the options are usable.</summary>
    public List<string> Problems()
    {
        var problems = new List<string>();
        if (!IsHttpUrl(Issuer, out var issuer))
        {
            problems.Add("SRS001: Sample:Issuer must be the brokers' issuer URL (absolute https; http only on loopback).");
        }
        else if (issuer.Scheme != Uri.UriSchemeHttps && !issuer.IsLoopback)
        {
            problems.Add("SRS001: Sample:Issuer must use https unless it is a loopback address.");
        }

        if (string.IsNullOrWhiteSpace(Audience))
        {
            problems.Add("SRS002: Sample:Audience is required: the aud that tokens for this API carry.");
        }

        if (!IsHttpUrl(RevocationAddress, out var revocation))
        {
            problems.Add("SRS003: Sample:RevocationAddress must be a broker's gRPC address (absolute https; http only on loopback).");
        }
        else if (revocation.Scheme != Uri.UriSchemeHttps && !revocation.IsLoopback)
        {
            problems.Add("SRS003: Sample:RevocationAddress must use https unless it is a loopback address.");
        }

        if (string.IsNullOrWhiteSpace(RevocationTokenFile) || !File.Exists(RevocationTokenFile))
        {
            problems.Add($"SRS006: Sample:RevocationTokenFile must name the file holding this API's resource-server token ('{RevocationTokenFile}' does not exist); a --dev broker writes .dev/resource-server.token.");
        }

        if (!string.IsNullOrEmpty(CaCertificatePath) && !File.Exists(CaCertificatePath))
        {
            problems.Add($"SRS004: Sample:CaCertificatePath '{CaCertificatePath}' does not exist.");
        }

        if (HealthOnlyPort is < 0 or > 65535)
        {
            problems.Add("SRS005: Sample:HealthOnlyPort must be a port number, or 0 for none.");
        }

        return problems;
    }

    private static bool IsPlainHttp(string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttp;

    private static bool IsHttpUrl(string value, out Uri uri) =>
        Uri.TryCreate(value, UriKind.Absolute, out uri!) && (uri.Scheme == Uri.UriSchemeHttps || uri.Scheme == Uri.UriSchemeHttp);
}
