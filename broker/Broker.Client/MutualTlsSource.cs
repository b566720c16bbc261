using Broker.V1;

namespace Broker.Client;

/// <summary>
/// Attests with the X.509-SVID presented as the TLS client certificate of the connection
/// (sets <c>x509_svid = true</c>). The channel itself must be configured for mutual TLS, e.g.
/// a <see cref="System.Net.Http.SocketsHttpHandler"/> whose SSL options carry the SVID and its key.
/// </summary>
public sealed class MutualTlsSource : IAttestationSource
{
    /// <summary>The shared instance; the source holds no state.</summary>
    public static MutualTlsSource Instance { get; } = new();

    /// <inheritdoc />
    public ValueTask<AttestationProof> GetProofAsync(CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(new AttestationProof { X509Svid = true });
}
