namespace Broker.Core.Secrets;

/// <summary>How this node runs leases (Broker:Secrets in configuration).</summary>
public sealed class SecretOptions
{
    public const string Section = "Broker:Secrets";

    /// <summary>Names this node in lease claims; unique per node (default: host name and a random suffix).</summary>
    public string Node { get; set; } = Environment.MachineName + "-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));

    /// <summary>How often every lease is checked against expiry and the revocation index (catches anything a notification missed).</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a node holds the right to end a lease; after it, a crashed node's claim can be taken over.</summary>
    public TimeSpan ClaimHold { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Most leases read per sweep.</summary>
    public int SweepLimit { get; set; } = 10_000;
}
