using Broker.Core.Refusals;
using Microsoft.Extensions.Options;

namespace Broker.Server.Hosting;

/// <summary>
/// What one caller can cost a node: the refusal budget (<c>Broker:RateLimit</c>) in front of every
/// refusal the broker audits, and Kestrel's limits (<c>Broker:Kestrel</c>) in front of every
/// connection. A bad setting stops start-up with its BRK id.
/// </summary>
internal static class RateLimitServerExtensions
{
    public static WebApplicationBuilder AddBrokerRateLimits(this WebApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        var budget = configuration.GetSection(RateLimitOptions.Section).Get<RateLimitOptions>() ?? new RateLimitOptions();
        var limits = configuration.GetSection(KestrelLimitsOptions.Section).Get<KestrelLimitsOptions>() ?? new KestrelLimitsOptions();
        string[] problems =
        [
            .. new RateLimitOptionsValidator().Validate(null, budget).Failures ?? [],
            .. new KestrelLimitsOptionsValidator().Validate(null, limits).Failures ?? [],
        ];
        if (problems.Length > 0)
        {
            throw new BrokerStartupException(problems);
        }

        builder.Services.AddOptions<RateLimitOptions>().BindConfiguration(RateLimitOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<RateLimitOptions>, RateLimitOptionsValidator>();
        builder.Services.AddOptions<KestrelLimitsOptions>().BindConfiguration(KestrelLimitsOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<KestrelLimitsOptions>, KestrelLimitsOptionsValidator>();
        builder.Services.AddSingleton<RefusalAuditor>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<RefusalAuditor>());

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            var l = kestrel.Limits;
            l.MaxConcurrentConnections = limits.MaxConcurrentConnections;
            l.MaxConcurrentUpgradedConnections = limits.MaxConcurrentConnections;
            l.Http2.MaxStreamsPerConnection = limits.Http2MaxStreamsPerConnection;
            l.MaxRequestBodySize = limits.MaxRequestBodySize;
            l.MaxRequestHeadersTotalSize = limits.MaxRequestHeadersTotalSize;
            l.MaxRequestHeaderCount = limits.MaxRequestHeaderCount;
            l.RequestHeadersTimeout = limits.RequestHeadersTimeout;
            l.KeepAliveTimeout = limits.KeepAliveTimeout;
        });
        return builder;
    }
}
