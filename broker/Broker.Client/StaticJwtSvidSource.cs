using Broker.V1;

namespace Broker.Client;

/// <summary>
/// Sends the same JWT-SVID with every call. Suits short-lived processes and tests; a
/// long-running agent should use <see cref="FileJwtSvidSource"/> so rotation is picked up.
/// </summary>
public sealed class StaticJwtSvidSource : IAttestationSource
{
    private readonly string _jwtSvid;

    /// <summary>Uses <paramref name="jwtSvid"/> (a compact JWS) for every call.</summary>
    public StaticJwtSvidSource(string jwtSvid)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(jwtSvid);
        _jwtSvid = jwtSvid.Trim();
    }

    /// <inheritdoc />
    public ValueTask<AttestationProof> GetProofAsync(CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(new AttestationProof { JwtSvid = _jwtSvid });
}
