using Broker.Core.Ssf.Transmitter;

namespace Broker.Server.Tests.Ssf;

/// <summary>Start-up checks of Broker:Ssf:Transmitter: each bad setting is refused with its own BRK id.</summary>
public sealed class SsfTransmitterOptionsTests
{
    [Fact]
    public void The_defaults_are_valid_and_the_default_retention_outlives_every_token()
    {
        var options = new SsfTransmitterOptions();
        Assert.Empty(SsfTransmitterOptionsValidator.Problems(options));
        Assert.Equal(TimeSpan.FromMinutes(61), options.RetentionFor(TimeSpan.FromHours(1), TimeSpan.FromSeconds(30)));
    }

    [Theory]
    [InlineData("MaxStreamsPerReceiver", "0", "BRK1240")]
    [InlineData("MaxStreamsPerReceiver", "2000", "BRK1240")]
    [InlineData("MaxStreams", "100001", "BRK1240")]
    [InlineData("MaxQueuedEvents", "0", "BRK1241")]
    [InlineData("Retention", "-00:00:01", "BRK1242")]
    [InlineData("Retention", "8.00:00:00", "BRK1242")]
    [InlineData("MaxEventsPerPoll", "1001", "BRK1243")]
    [InlineData("LongPollTimeout", "00:00:00.5", "BRK1244")]
    [InlineData("LongPollTimeout", "00:05:00", "BRK1244")]
    [InlineData("PushTimeout", "00:00:10", "BRK1245")]
    [InlineData("PushMaxBackoff", "00:00:00.5", "BRK1245")]
    [InlineData("PushLease", "00:00:08", "BRK1245")]
    public void A_bad_setting_is_refused_with_its_id(string setting, string value, string id)
    {
        var options = new SsfTransmitterOptions();
        var property = typeof(SsfTransmitterOptions).GetProperty(setting)!;
        property.SetValue(options, property.PropertyType == typeof(int) ? int.Parse(value, System.Globalization.CultureInfo.InvariantCulture) : TimeSpan.Parse(value, System.Globalization.CultureInfo.InvariantCulture));

        var problem = Assert.Single(SsfTransmitterOptionsValidator.Problems(options));
        Assert.StartsWith(id + ": Broker:Ssf:Transmitter:", problem, StringComparison.Ordinal);
        Assert.Contains(setting, problem, StringComparison.Ordinal);
    }
}
