using System.Security.Cryptography.X509Certificates;

namespace Broker.SampleResourceServer;

/// <summary>HTTP handlers that trust one private CA for the brokers' TLS (discovery, JWKS, revocation stream).</summary>
internal static class BrokerTls
{
    public static SocketsHttpHandler Handler(X509Certificate2 ca)
    {
        var handler = new SocketsHttpHandler
        {
            // The revocation stream is one long-lived HTTP/2 call: keep it, and notice a dead peer.
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            KeepAlivePingDelay = TimeSpan.FromSeconds(15),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
            EnableMultipleHttp2Connections = true,
        };

        // Only this CA, not the system store; the host name is still checked against the certificate.
        handler.SslOptions.CertificateChainPolicy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck, // a private CA without CRL or OCSP
        };
        handler.SslOptions.CertificateChainPolicy.CustomTrustStore.Add(ca);
        return handler;
    }
}
