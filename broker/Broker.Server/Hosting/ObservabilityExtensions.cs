using System.Diagnostics.Metrics;
using Broker.Core.Diagnostics;
using Microsoft.Extensions.DependencyInjection.Extensions;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Broker.Server.Hosting;

/// <summary>
/// Metrics and traces through OpenTelemetry: the broker's own meter and trace source, ASP.NET
/// Core (every gRPC call) and the .NET runtime. Metrics are served for Prometheus at
/// <see cref="ObservabilitySettings.PrometheusPath"/>; both signals go to an OTLP collector
/// when the standard <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (traces only then). docs/observability.md lists
/// every instrument.
/// </summary>
internal static class ObservabilityExtensions
{
    public const string OtlpEndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";

    public static WebApplicationBuilder AddBrokerObservability(this WebApplicationBuilder builder, BrokerOptions options)
    {
        builder.Services.AddSingleton<BrokerGauges>();

        var otlp = !string.IsNullOrWhiteSpace(builder.Configuration[OtlpEndpointVariable]);
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(
                serviceName: "broker",
                serviceVersion: typeof(BrokerMetrics).Assembly.GetName().Version?.ToString(),
                serviceInstanceId: string.IsNullOrWhiteSpace(options.NodeId) ? Environment.MachineName : options.NodeId))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(BrokerMetrics.MeterName)
                    .AddAspNetCoreInstrumentation()
                    .AddRuntimeInstrumentation();
                if (!string.IsNullOrEmpty(options.Observability.PrometheusPath))
                {
                    // No response cache: an operator checking a node after an incident step
                    // must see that step, not a copy from before it.
                    metrics.AddPrometheusExporter(prometheus => prometheus.ScrapeResponseCacheDurationMilliseconds = 0);
                }

                if (otlp)
                {
                    metrics.AddOtlpExporter();
                }
            });

        // Spans are recorded only when something exports them: without a collector, a span per
        // call is CPU and allocation on the issuance path that nobody reads.
        if (otlp)
        {
            telemetry.WithTracing(tracing => tracing
                .AddSource(BrokerActivity.SourceName)
                .AddAspNetCoreInstrumentation(aspnet =>
                {
                    // Probes and scrapes are not worth a span each.
                    aspnet.Filter = http => !IsInfrastructure(http.Request.Path, options);
                })
                .AddOtlpExporter());
        }

        builder.Services.ConfigureOpenTelemetryMeterProvider((services, metrics) =>
        {
            // A listener hears every meter of its name in the process. Instruments made through
            // another host's IMeterFactory (several nodes in one process, as in tests) are that
            // host's to report, never this node's.
            var own = services.GetRequiredService<IMeterFactory>();
            metrics.AddView(instrument => instrument.Meter.Scope is IMeterFactory factory && !ReferenceEquals(factory, own)
                ? MetricStreamConfiguration.Drop
                : null);
        });
        return builder;
    }

    /// <summary>
    /// With a dedicated metrics port, that listener answers the scrape path and nothing else, and
    /// no other listener answers it. The choice is by the port the connection arrived on, never
    /// by the Host header, which callers write. Runs before authentication and routing.
    /// </summary>
    public static WebApplication UseBrokerMetricsListener(this WebApplication app)
    {
        var settings = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<BrokerOptions>>().Value.Observability;
        if (string.IsNullOrEmpty(settings.PrometheusPath) || settings.MetricsPort is not { } port)
        {
            return app;
        }

        app.UseOpenTelemetryPrometheusScrapingEndpoint(http => http.Connection.LocalPort == port && http.Request.Path == settings.PrometheusPath);
        app.Use((http, next) =>
        {
            if (http.Connection.LocalPort == port || http.Request.Path.StartsWithSegments(settings.PrometheusPath, StringComparison.Ordinal))
            {
                http.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            }

            return next(http);
        });
        return app;
    }

    public static WebApplication MapBrokerObservability(this WebApplication app)
    {
        // Gauges read live node state; created once the state they observe exists.
        _ = app.Services.GetRequiredService<BrokerGauges>();

        var settings = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<BrokerOptions>>().Value.Observability;
        if (!string.IsNullOrEmpty(settings.PrometheusPath) && settings.MetricsPort is null)
        {
            app.MapPrometheusScrapingEndpoint(settings.PrometheusPath);
        }

        return app;
    }

    private static bool IsInfrastructure(PathString path, BrokerOptions options) =>
        path.StartsWithSegments("/healthz", StringComparison.Ordinal)
        || path.StartsWithSegments("/grpc.health.v1.Health", StringComparison.Ordinal)
        || (!string.IsNullOrEmpty(options.Observability.PrometheusPath) && path.StartsWithSegments(options.Observability.PrometheusPath, StringComparison.Ordinal));
}

public sealed class ObservabilitySettings
{
    /// <summary>Path of the Prometheus scrape endpoint on the HTTP listeners; empty turns it off.</summary>
    public string PrometheusPath { get; set; } = "/metrics";

    /// <summary>When set, the scrape endpoint answers only on this port, which answers nothing else (a dedicated metrics listener).</summary>
    public int? MetricsPort { get; set; }
}
