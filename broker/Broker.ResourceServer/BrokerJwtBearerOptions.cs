using Grpc.Net.Client;

namespace Broker.ResourceServer;

/// <summary>
/// How a resource server trusts Broker: where the broker's issuer and revocation stream are,
/// which audience this server is, and what to do when revocation state is unknown. Checked at
/// start-up; a missing or unsafe setting stops the host instead of turning a check off.
/// </summary>
public sealed class BrokerJwtBearerOptions
{
    /// <summary>
    /// The broker's issuer URL (the <c>iss</c> claim). Its <c>/.well-known/openid-configuration</c>
    /// supplies the signing keys (JWKS). Required.
    /// </summary>
    public string Authority { get; set; } = "";

    /// <summary>This resource server's audience: tokens whose <c>aud</c> differs are refused. Required.</summary>
    public string Audience { get; set; } = "";

    /// <summary>
    /// Require HTTPS for the discovery document and JWKS, and for <see cref="RevocationAddress"/>.
    /// Default true. Set false only for a broker on loopback or in a local dev setup; the SDK logs
    /// a warning at start when it is off.
    /// </summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    /// <summary>
    /// The broker's gRPC address for <c>RevocationService.WatchRevocations</c>
    /// (for example <c>https://broker.internal:5080</c>, or <c>http://127.0.0.1:5080</c> for h2c in dev). Required.
    /// </summary>
    public string RevocationAddress { get; set; } = "";

    /// <summary>
    /// A file holding this resource server's token for the revocation channel (a bearer token
    /// from your IdP for the broker's resource-server audience, with the resource-server role).
    /// Read again at every (re)connect, so a rotated file (a Kubernetes projected token, a
    /// sidecar's output, or the <c>.dev/resource-server.token</c> a dev broker writes) is
    /// picked up. Set this or <see cref="RevocationTokenProvider"/>.
    /// </summary>
    public string RevocationTokenFile { get; set; } = "";

    /// <summary>
    /// Supplies this resource server's token for the revocation channel, called at every
    /// (re)connect (for example a client-credentials grant against your IdP, cached until near
    /// expiry). Set this or <see cref="RevocationTokenFile"/>.
    /// </summary>
    public Func<CancellationToken, ValueTask<string>>? RevocationTokenProvider { get; set; }

    /// <summary>
    /// Optional handler for the revocation channel, for example a <see cref="SocketsHttpHandler"/>
    /// with a client certificate or a private CA. Ignored when <see cref="RevocationChannelOptions"/>
    /// sets its own handler or client.
    /// </summary>
    public HttpMessageHandler? RevocationHttpHandler { get; set; }

    /// <summary>Optional gRPC channel options for the revocation channel (TLS, message limits, logging).</summary>
    public GrpcChannelOptions? RevocationChannelOptions { get; set; }

    /// <summary>
    /// How long the SDK may go without hearing from the broker (heartbeat, entry or snapshot)
    /// before revocation state counts as unknown. Default 2 s; the broker heartbeats at least
    /// every 500 ms.
    /// </summary>
    public TimeSpan StalenessBound { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>What to do with a valid token while revocation state is unknown. Default <see cref="StaleStance.FailClosed"/>.</summary>
    public StaleStance StaleStance { get; set; } = StaleStance.FailClosed;

    /// <summary>
    /// Allowed clock difference with the broker for <c>exp</c>/<c>nbf</c> (default 30 s, where stock
    /// JwtBearer allows 5 minutes). Revocation entries are kept this much past their expiry so a
    /// token accepted within the skew is still checked.
    /// </summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The broker's <c>Broker:MaxTokenLifetime</c> (default 1 hour): a token whose <c>exp</c> is
    /// further than this from its <c>iat</c> is refused, because the broker keeps a revocation
    /// only that long past what it covers. Set it to the broker's value.
    /// </summary>
    public TimeSpan MaxTokenLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>First wait before reconnecting the revocation stream; doubles up to <see cref="ReconnectDelayMax"/>. Default 100 ms.</summary>
    public TimeSpan ReconnectDelayMin { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Longest wait between reconnect attempts. Default 2 s.</summary>
    public TimeSpan ReconnectDelayMax { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How often lapsed revocation entries are dropped from the index. Default 30 s.</summary>
    public TimeSpan PruneInterval { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>What the SDK does with an otherwise valid token while it cannot confirm it knows every revocation.</summary>
public enum StaleStance
{
    /// <summary>Refuse the token: 401 with <c>error_description="revocation state unknown"</c>. The default.</summary>
    FailClosed,

    /// <summary>
    /// Accept the token after checking the revocations already held, and log a warning. A
    /// revocation made while the stream is down is not enforced until it reconnects. Opt-in only.
    /// </summary>
    FailOpen,
}
