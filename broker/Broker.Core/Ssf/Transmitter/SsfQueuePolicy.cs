using Microsoft.Extensions.Options;

namespace Broker.Core.Ssf.Transmitter;

/// <summary>The queue bounds in force now (<see cref="SsfTransmitterOptions.MaxQueuedEvents"/>, the retention).</summary>
public sealed class SsfQueuePolicy(IOptions<SsfTransmitterOptions> options, TimeSpan maxTokenLifetime, TimeSpan clockSkew, TimeProvider time)
{
    public TimeSpan Retention { get; } = options.Value.RetentionFor(maxTokenLifetime, clockSkew);

    public SsfQueueLimits Limits() => new(options.Value.MaxQueuedEvents, Retention, time.GetUtcNow());
}
