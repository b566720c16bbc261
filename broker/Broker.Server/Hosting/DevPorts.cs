using System.Globalization;

namespace Broker.Server.Hosting;

/// <summary>The two loopback ports of --dev (<c>--grpc-port</c>, <c>--http-port</c>), read strictly.</summary>
internal static class DevPorts
{
    public const string GrpcKey = "Broker:DevGrpcPort";
    public const string HttpKey = "Broker:DevHttpPort";

    /// <summary>
    /// The port in <paramref name="key"/>, or <paramref name="fallback"/> when unset. Anything but
    /// 1–65535 is refused (BRK1162): port 0 would bind a random port the issuer URL cannot name.
    /// </summary>
    public static int Read(IConfiguration configuration, string key, int fallback, string flag)
    {
        var text = configuration[key];
        if (string.IsNullOrWhiteSpace(text))
        {
            return fallback;
        }

        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is >= 1 and <= 65535)
        {
            return port;
        }

        throw new BrokerStartupException([$"BRK1162: {flag} '{text}' is not a port number (1-65535)."]);
    }
}
