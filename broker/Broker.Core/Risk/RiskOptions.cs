namespace Broker.Core.Risk;

/// <summary>Timing of signal intake. Which sources, containment and validity bounds are policy (signals:).</summary>
public sealed class RiskOptions
{
    /// <summary>How far in the future a signal's observed_at may be (clock differences between the runtime service and Broker).</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a signal id is remembered after the signal lapses; past that a replay is refused as expired anyway.</summary>
    public TimeSpan IdRetention { get; set; } = TimeSpan.FromMinutes(5);
}
