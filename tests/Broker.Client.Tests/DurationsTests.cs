using Broker.Cli.Internal;

namespace Broker.Client.Tests;

public sealed class DurationsTests
{
    [Theory]
    [InlineData("30s", 30)]
    [InlineData("5m", 300)]
    [InlineData("1h", 3600)]
    public void Parses_policy_style_durations(string text, int seconds)
    {
        Assert.True(Durations.TryParse(text, out var value));
        Assert.Equal(TimeSpan.FromSeconds(seconds), value);
    }

    [Theory]
    [InlineData("0s")]
    [InlineData("5")]
    [InlineData("5 m")]
    [InlineData("1m30s")]
    [InlineData("5M")]
    [InlineData("99999999h")]
    [InlineData(null)]
    public void Refuses_anything_else(string? text) => Assert.False(Durations.TryParse(text, out _));

    [Theory]
    [InlineData(299, "4m 59s")]
    [InlineData(3600, "1h")]
    [InlineData(0, "0s")]
    public void Formats_largest_unit_first(int seconds, string expected) =>
        Assert.Equal(expected, Durations.Format(TimeSpan.FromSeconds(seconds)));
}
