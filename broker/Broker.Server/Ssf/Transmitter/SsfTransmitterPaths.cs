namespace Broker.Server.Ssf.Transmitter;

/// <summary>Where the transmitter answers (SSF 1.0 section 7); the metadata names each with the issuer in front.</summary>
internal static class SsfTransmitterPaths
{
    public const string Metadata = "/.well-known/ssf-configuration";
    public const string Streams = "/ssf/streams";
    public const string Verification = "/ssf/verify";
    public const string PollPrefix = "/ssf/poll/";

    /// <summary>The RFC 8936 poll URL of a stream (its <c>delivery.endpoint_url</c>).</summary>
    public static string Poll(string issuer, string streamId) => issuer.TrimEnd('/') + PollPrefix + streamId;
}
