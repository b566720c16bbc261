using System.Globalization;
using System.Text.RegularExpressions;

namespace Broker.Server.Tests.Infrastructure;

/// <summary>Reads the Prometheus text exposition format far enough to look up series by name and labels.</summary>
public static partial class PrometheusText
{
    /// <summary>Every sample, keyed by its series (<c>name{label="value",...}</c> as exported).</summary>
    public static Dictionary<string, double> Parse(string text)
    {
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var match = Sample().Match(line);
            Assert.True(match.Success, $"not a Prometheus sample line: {line}");
            var value = match.Groups["value"].Value switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                "NaN" => double.NaN,
                var v => double.Parse(v, CultureInfo.InvariantCulture),
            };
            samples[match.Groups["series"].Value] = value;
        }

        return samples;
    }

    /// <summary>The sum over series named <paramref name="name"/> carrying all <paramref name="labels"/>; null when none is exported.</summary>
    public static double? Sum(Dictionary<string, double> samples, string name, params (string Label, string Value)[] labels)
    {
        double? sum = null;
        foreach (var (series, value) in samples)
        {
            var brace = series.IndexOf('{', StringComparison.Ordinal);
            var seriesName = brace < 0 ? series : series[..brace];
            if (seriesName == name && labels.All(l => series.Contains($"{l.Label}=\"{l.Value}\"", StringComparison.Ordinal)))
            {
                sum = (sum ?? 0) + value;
            }
        }

        return sum;
    }

    [GeneratedRegex(@"^(?<series>[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})?) (?<value>\S+)( \d+)?$")]
    private static partial Regex Sample();
}
