namespace Broker.Server.Hosting;

/// <summary>
/// How resource servers authenticate to the revocation channel (<c>WatchRevocations</c>,
/// <c>Introspect</c>) and how many streams they may hold, bound from
/// <c>Broker:ResourceServers</c>. A resource server presents a bearer token for
/// <see cref="Audience"/> carrying <see cref="Role"/>, from the organisation's IdP
/// (<see cref="Authority"/>, by default the operators' one) or signed by a pinned key
/// (<see cref="KeyFile"/> with <see cref="Issuer"/>) where there is no IdP to mint
/// client-credential tokens. docs/resource-server.md.
/// </summary>
public sealed class ResourceServerOptions
{
    public const string Section = "Broker:ResourceServers";

    /// <summary>OIDC authority whose discovery document supplies the keys; empty: <c>Broker:Operators:Authority</c>.</summary>
    public string Authority { get; set; } = "";

    /// <summary>Instead of an authority: a PEM public key (EC or RSA) that signs resource-server tokens.</summary>
    public string KeyFile { get; set; } = "";

    /// <summary>The <c>iss</c> of tokens signed with <see cref="KeyFile"/> (required with it).</summary>
    public string Issuer { get; set; } = "";

    /// <summary>The audience resource-server tokens carry; never the operators' or the agents' audience.</summary>
    public string Audience { get; set; } = "broker-resource-servers";

    /// <summary>Claim holding the caller's roles (string or array).</summary>
    public string RolesClaim { get; set; } = "roles";

    /// <summary>The role a resource-server token must carry.</summary>
    public string Role { get; set; } = "resource-server";

    /// <summary>Claim naming the resource server (stream caps count per name); <c>client_id</c> and <c>azp</c> are tried after it.</summary>
    public string NameClaim { get; set; } = "sub";

    /// <summary>Concurrent <c>WatchRevocations</c> streams one resource server may hold at one node.</summary>
    public int MaxStreamsPerCaller { get; set; } = 8;

    /// <summary>Concurrent <c>WatchRevocations</c> streams one node serves in total.</summary>
    public int MaxStreams { get; set; } = 1024;
}
