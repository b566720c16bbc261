namespace Broker.Core.Ssf;

/// <summary>SET jtis already received, per transmitter, until a replay would be refused as too old anyway.</summary>
public interface ISsfReplayStore
{
    /// <summary>Claims the jti; false when it was claimed before (a replay).</summary>
    ValueTask<bool> TryClaimAsync(string issuer, string jti, DateTimeOffset until, CancellationToken cancellationToken);

    /// <summary>Gives a claim back when the SET took no effect, so the transmitter's retry goes through.</summary>
    ValueTask ReleaseAsync(string issuer, string jti, CancellationToken cancellationToken);
}
