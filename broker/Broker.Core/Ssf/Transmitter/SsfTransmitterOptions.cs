using Microsoft.Extensions.Options;

namespace Broker.Core.Ssf.Transmitter;

/// <summary>Broker as a Shared Signals transmitter (<c>Broker:Ssf:Transmitter</c>, docs/ssf.md).</summary>
public sealed class SsfTransmitterOptions
{
    public const string Section = "Broker:Ssf:Transmitter";

    /// <summary>Streams one receiver (resource server) may hold.</summary>
    public int MaxStreamsPerReceiver { get; set; } = 4;

    /// <summary>Streams the fleet holds in total.</summary>
    public int MaxStreams { get; set; } = 1000;

    /// <summary>SETs one stream queues; when full, the oldest is dropped (and counted) to make room.</summary>
    public int MaxQueuedEvents { get; set; } = 10000;

    /// <summary>
    /// How long an unacknowledged SET is kept; zero: the longest token lifetime plus twice the
    /// clock skew, after which every token the revocation matched has expired anyway.
    /// </summary>
    public TimeSpan Retention { get; set; } = TimeSpan.Zero;

    /// <summary>Most SETs one poll answer carries (a larger <c>maxEvents</c> is cut to this).</summary>
    public int MaxEventsPerPoll { get; set; } = 100;

    /// <summary>Longest a poll with <c>returnImmediately: false</c> waits for an event before answering empty.</summary>
    public TimeSpan LongPollTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Longest one push POST may take before it counts as failed.</summary>
    public TimeSpan PushTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Longest wait between retries of a failed push (the wait doubles from one second up to this).</summary>
    public TimeSpan PushMaxBackoff { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How long a node holds the right to push one stream without renewing it (another node takes over after).</summary>
    public TimeSpan PushLease { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Push endpoints may be plain http:// on loopback only (tests, sidecars); everything else must be https://.</summary>
    public bool AllowLoopbackHttpPush { get; set; } = true;

    /// <summary>The retention in force for <paramref name="maxTokenLifetime"/> and <paramref name="clockSkew"/>.</summary>
    public TimeSpan RetentionFor(TimeSpan maxTokenLifetime, TimeSpan clockSkew) =>
        Retention > TimeSpan.Zero ? Retention : maxTokenLifetime + clockSkew + clockSkew;
}

/// <summary>Start-up checks for <see cref="SsfTransmitterOptions"/> (BRK1240-1245).</summary>
public sealed class SsfTransmitterOptionsValidator : IValidateOptions<SsfTransmitterOptions>
{
    public ValidateOptionsResult Validate(string? name, SsfTransmitterOptions options)
    {
        var problems = Problems(options);
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }

    public static List<string> Problems(SsfTransmitterOptions o)
    {
        var problems = new List<string>();
        if (o.MaxStreamsPerReceiver < 1 || o.MaxStreams < 1 || o.MaxStreamsPerReceiver > o.MaxStreams || o.MaxStreams > 100_000)
        {
            problems.Add("BRK1240: Broker:Ssf:Transmitter:MaxStreamsPerReceiver and MaxStreams must be positive, MaxStreamsPerReceiver at most MaxStreams, and MaxStreams at most 100000.");
        }

        if (o.MaxQueuedEvents < 1 || o.MaxQueuedEvents > 1_000_000)
        {
            problems.Add("BRK1241: Broker:Ssf:Transmitter:MaxQueuedEvents must be from 1 to 1000000.");
        }

        if (o.Retention < TimeSpan.Zero || o.Retention > TimeSpan.FromDays(7))
        {
            problems.Add("BRK1242: Broker:Ssf:Transmitter:Retention must be from 0 (the longest token lifetime plus twice the clock skew) to 7 days.");
        }

        if (o.MaxEventsPerPoll < 1 || o.MaxEventsPerPoll > 1000)
        {
            problems.Add("BRK1243: Broker:Ssf:Transmitter:MaxEventsPerPoll must be from 1 to 1000.");
        }

        if (o.LongPollTimeout < TimeSpan.FromSeconds(1) || o.LongPollTimeout > TimeSpan.FromMinutes(2))
        {
            problems.Add("BRK1244: Broker:Ssf:Transmitter:LongPollTimeout must be from 00:00:01 to 00:02:00.");
        }

        if (o.PushTimeout < TimeSpan.FromMilliseconds(100) || o.PushTimeout > TimeSpan.FromMinutes(1)
            || o.PushMaxBackoff < TimeSpan.FromSeconds(1) || o.PushMaxBackoff > TimeSpan.FromHours(1)
            || o.PushLease <= o.PushTimeout + o.PushTimeout)
        {
            problems.Add("BRK1245: Broker:Ssf:Transmitter:PushTimeout must be from 00:00:00.1 to 00:01:00, PushMaxBackoff from 00:00:01 to 01:00:00, and PushLease more than twice PushTimeout (a push must finish inside the lease).");
        }

        return problems;
    }
}
