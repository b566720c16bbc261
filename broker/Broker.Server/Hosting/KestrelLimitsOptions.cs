using Microsoft.Extensions.Options;

namespace Broker.Server.Hosting;

/// <summary>
/// Kestrel's connection, stream and request limits (<c>Broker:Kestrel</c>), set explicitly so
/// what one client can hold open does not depend on a framework default (SECURITY.md).
/// </summary>
public sealed class KestrelLimitsOptions
{
    public const string Section = "Broker:Kestrel";

    /// <summary>Open connections per node, all listeners together.</summary>
    public long MaxConcurrentConnections { get; set; } = 4096;

    /// <summary>Concurrent HTTP/2 streams (gRPC calls) on one connection.</summary>
    public int Http2MaxStreamsPerConnection { get; set; } = 100;

    /// <summary>
    /// Largest request body on HTTP endpoints (OAuth, SSF, console). gRPC messages have their own,
    /// smaller limit (64 KiB), as do the OAuth form and SSF reader.
    /// </summary>
    public long MaxRequestBodySize { get; set; } = 1024 * 1024;

    /// <summary>All request headers together.</summary>
    public int MaxRequestHeadersTotalSize { get; set; } = 32 * 1024;

    public int MaxRequestHeaderCount { get; set; } = 100;

    /// <summary>How long a client may take to send its request headers (slow-header attacks).</summary>
    public TimeSpan RequestHeadersTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long an idle connection is kept open.</summary>
    public TimeSpan KeepAliveTimeout { get; set; } = TimeSpan.FromMinutes(2);
}

/// <summary>Refuses limits that are not limits, with the setting's name and a BRK id.</summary>
internal sealed class KestrelLimitsOptionsValidator : IValidateOptions<KestrelLimitsOptions>
{
    public ValidateOptionsResult Validate(string? name, KestrelLimitsOptions options)
    {
        var failures = new List<string>();
        if (options.MaxConcurrentConnections is < 1 or > 1_000_000)
        {
            failures.Add("BRK1093: Broker:Kestrel:MaxConcurrentConnections must be from 1 to 1000000.");
        }

        if (options.Http2MaxStreamsPerConnection is < 1 or > 1000)
        {
            failures.Add("BRK1094: Broker:Kestrel:Http2MaxStreamsPerConnection must be from 1 to 1000.");
        }

        if (options.MaxRequestBodySize < BrokerServerExtensions.MaxRequestBytes || options.MaxRequestBodySize > 64L * 1024 * 1024)
        {
            failures.Add($"BRK1095: Broker:Kestrel:MaxRequestBodySize must be from {BrokerServerExtensions.MaxRequestBytes} to {64 * 1024 * 1024} bytes.");
        }

        if (options.MaxRequestHeadersTotalSize is < 8 * 1024 or > 1024 * 1024 || options.MaxRequestHeaderCount is < 16 or > 1000)
        {
            failures.Add("BRK1096: Broker:Kestrel:MaxRequestHeadersTotalSize must be from 8192 to 1048576 bytes and Broker:Kestrel:MaxRequestHeaderCount from 16 to 1000.");
        }

        if (options.RequestHeadersTimeout < TimeSpan.FromSeconds(1) || options.RequestHeadersTimeout > TimeSpan.FromMinutes(2)
            || options.KeepAliveTimeout < TimeSpan.FromSeconds(1) || options.KeepAliveTimeout > TimeSpan.FromMinutes(30))
        {
            failures.Add("BRK1097: Broker:Kestrel:RequestHeadersTimeout must be from 00:00:01 to 00:02:00 and Broker:Kestrel:KeepAliveTimeout from 00:00:01 to 00:30:00.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
