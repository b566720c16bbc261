namespace Broker.Core.Revocation;

public sealed class RevocationOptions
{
    /// <summary>
    /// How long a node may go without confirming it has every revocation before it refuses
    /// issuance and introspection (fail closed).
    /// </summary>
    public TimeSpan StalenessBound { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How often the log is read when no append notification arrives.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Most selectors in one Revoke call.</summary>
    public int MaxBatch { get; set; } = 100;

    /// <summary>
    /// How long an entry is kept past what it covers, and the revocation log past its newest
    /// entry: at least the longest token lifetime, so an entry outlives every token it matches.
    /// The host sets it from <c>Broker:MaxTokenLifetime</c>; a longer value is allowed, a shorter one refused.
    /// </summary>
    public TimeSpan MaxTokenLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Allowed clock difference; also how far in the future an "issued before" time may be.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);
}
