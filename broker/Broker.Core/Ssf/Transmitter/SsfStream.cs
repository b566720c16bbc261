namespace Broker.Core.Ssf.Transmitter;

/// <summary>
/// One receiver's event stream (OpenID Shared Signals 1.0, section 7.1): who owns it, the
/// audience its SETs carry, and how they are delivered. The stream's id, issuer and audience
/// are chosen by Broker; the rest by the receiver.
/// </summary>
/// <param name="Owner">The resource server that created it (<c>issuer name</c>): only it sees or changes the stream.</param>
/// <param name="Audience">The <c>aud</c> of every SET on the stream: the receiver's own name.</param>
/// <param name="EndpointUrl">Push: where SETs are POSTed. Poll: null (the poll URL derives from the id).</param>
/// <param name="AuthorizationHeader">Push: the <c>Authorization</c> value sent with each SET. A secret: never logged or returned.</param>
/// <param name="EventsRequested">What the receiver asked for; delivered is its intersection with <see cref="SsfEventTypes.Supported"/>.</param>
public sealed record SsfStream(
    string Id,
    string Owner,
    string Audience,
    string Method,
    string? EndpointUrl,
    string? AuthorizationHeader,
    IReadOnlyList<string> EventsRequested,
    string? Description,
    DateTimeOffset CreatedAt)
{
    public bool IsPush => Method == SsfDelivery.Push;

    /// <summary>The event types this stream carries (SSF <c>events_delivered</c>).</summary>
    public IReadOnlyList<string> EventsDelivered => [.. SsfEventTypes.Supported.Where(EventsRequested.Contains)];

    public bool Delivers(string eventType) => EventsDelivered.Contains(eventType);
}

/// <summary>Delivery method URNs (SSF 1.0 section 6.1.1).</summary>
public static class SsfDelivery
{
    /// <summary>Push-based SET delivery, RFC 8935.</summary>
    public const string Push = "urn:ietf:rfc:8935";

    /// <summary>Poll-based SET delivery, RFC 8936.</summary>
    public const string Poll = "urn:ietf:rfc:8936";

    public static readonly string[] Supported = [Push, Poll];
}

/// <summary>The event types Broker transmits.</summary>
public static class SsfEventTypes
{
    /// <summary>CAEP 1.0 section 3.1: every revocation, whatever it matched (docs/ssf.md says how the subject tells).</summary>
    public const string SessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

    /// <summary>SSF 1.0 section 8.1.4: sent when the receiver asks, always delivered (it carries no security fact).</summary>
    public const string Verification = "https://schemas.openid.net/secevent/ssf/event-type/verification";

    public static readonly string[] Supported = [SessionRevoked];
}
