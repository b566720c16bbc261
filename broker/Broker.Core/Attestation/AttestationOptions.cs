namespace Broker.Core.Attestation;

/// <summary>Limits every proof is held to. Defaults are deliberate, not the library's.</summary>
public sealed class AttestationOptions
{
    /// <summary>The audience a proof must name to be accepted by this broker (required).</summary>
    public string Audience { get; set; } = "";

    /// <summary>Allowed clock difference for exp/nbf/iat. Not the 5-minute library default.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest accepted exp - iat (or exp - now when iat is absent).</summary>
    public TimeSpan MaxProofLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Largest accepted proof in bytes; larger ones are refused before parsing.</summary>
    public int MaxProofBytes { get; set; } = 8 * 1024;

    /// <summary>How many validated proofs to remember (keyed by a digest of the exact bytes, never past exp).</summary>
    public int ValidatedProofCacheSize { get; set; } = 10_000;

    /// <summary>How long a trust bundle fetch may take before it counts as unavailable.</summary>
    public TimeSpan BundleFetchTimeout { get; set; } = TimeSpan.FromSeconds(5);
}
