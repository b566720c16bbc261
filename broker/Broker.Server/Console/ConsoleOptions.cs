namespace Broker.Server.OperatorConsole;

/// <summary>
/// The web console (<c>/console</c>), bound from <c>Broker:Console</c>. Operators sign in with the
/// operator IdP (<c>Broker:Operators:Authority</c>, authorization code + PKCE); in --dev a local
/// sign-in stands in for it.
/// </summary>
public sealed class ConsoleOptions
{
    public const string Section = "Broker:Console";

    /// <summary>Serve the console. Default: on in --dev; in production on once <see cref="ClientId"/> is set.</summary>
    public bool? Enabled { get; set; }

    /// <summary>The console's OIDC client id at the operator IdP (production).</summary>
    public string ClientId { get; set; } = "";

    /// <summary>A file holding the client secret, for IdPs that require one; a public client with PKCE needs none.</summary>
    public string ClientSecretFile { get; set; } = "";

    /// <summary>Scopes asked for besides <c>openid</c>, e.g. <c>profile</c> or the one that releases the roles claim.</summary>
    public List<string> Scopes { get; set; } = [];

    /// <summary>How long a console session lasts before the operator signs in again (no sliding renewal).</summary>
    public TimeSpan SessionLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Whether the console is served, given --dev.</summary>
    public bool IsEnabled(bool dev) => Enabled ?? (dev || !string.IsNullOrWhiteSpace(ClientId));
}
