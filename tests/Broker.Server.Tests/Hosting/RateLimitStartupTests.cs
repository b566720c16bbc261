using Broker.Server.Hosting;
using Broker.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Broker.Server.Tests.Hosting;

/// <summary><c>Broker:RateLimit</c> and <c>Broker:Kestrel</c> are checked at start and reach Kestrel as set.</summary>
public sealed class RateLimitStartupTests : IDisposable
{
    private readonly PolicyOnDisk _policy = new();

    public void Dispose() => _policy.Dispose();

    [Fact]
    public async Task Kestrel_limits_are_set_from_broker_kestrel()
    {
        await using var host = await _policy.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Kestrel:MaxConcurrentConnections"] = "123",
            ["Broker:Kestrel:Http2MaxStreamsPerConnection"] = "7",
            ["Broker:Kestrel:RequestHeadersTimeout"] = "00:00:05",
        });

        var limits = host.Services.GetRequiredService<IOptions<KestrelServerOptions>>().Value.Limits;
        Assert.Equal(123, limits.MaxConcurrentConnections);
        Assert.Equal(7, limits.Http2.MaxStreamsPerConnection);
        Assert.Equal(TimeSpan.FromSeconds(5), limits.RequestHeadersTimeout);
        Assert.Equal(new KestrelLimitsOptions().MaxRequestBodySize, limits.MaxRequestBodySize);
        Assert.Equal(new KestrelLimitsOptions().MaxRequestHeadersTotalSize, limits.MaxRequestHeadersTotalSize);
    }

    [Theory]
    [InlineData("Broker:RateLimit:PermitsPerWindow", "0", "BRK1090")]
    [InlineData("Broker:RateLimit:Window", "00:00:00", "BRK1091")]
    [InlineData("Broker:RateLimit:QueueLimit", "-1", "BRK1092")]
    [InlineData("Broker:Kestrel:MaxConcurrentConnections", "0", "BRK1093")]
    [InlineData("Broker:Kestrel:Http2MaxStreamsPerConnection", "0", "BRK1094")]
    [InlineData("Broker:Kestrel:MaxRequestBodySize", "1024", "BRK1095")]
    [InlineData("Broker:Kestrel:MaxRequestHeaderCount", "1", "BRK1096")]
    [InlineData("Broker:Kestrel:RequestHeadersTimeout", "00:10:00", "BRK1097")]
    public async Task A_limit_that_bounds_nothing_is_refused_at_start_naming_the_setting(string key, string value, string id)
    {
        var refused = await Assert.ThrowsAsync<BrokerStartupException>(() => _policy.StartAsync(new Dictionary<string, string?> { [key] = value }));

        var problem = Assert.Single(refused.Problems);
        Assert.StartsWith(id + ":", problem, StringComparison.Ordinal);
        Assert.Contains(key, problem, StringComparison.Ordinal);
    }
}
