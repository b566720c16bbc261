using Broker.Core.Policy;
using Broker.Core.Secrets;
using Broker.Redis;
using Broker.Secrets.Postgres;
using Broker.Server.Services;
using Grpc.AspNetCore.HealthChecks;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Broker.Server.Hosting;

/// <summary>Downstream credentials (docs/secrets.md): engines, the lease store, the reaper, health and the operators' list.</summary>
public static class SecretServerExtensions
{
    public const string HealthCheckName = "secrets";

    public static IServiceCollection AddSecrets(this IServiceCollection services, BrokerOptions options, IConfiguration? configuration = null)
    {
        services.AddOptions<SecretOptions>()
            .Configure(secrets =>
            {
                configuration?.GetSection(SecretOptions.Section).Bind(secrets);
                if (!string.IsNullOrWhiteSpace(options.NodeId) && configuration?[SecretOptions.Section + ":Node"] is null)
                {
                    secrets.Node = options.NodeId + "-" + secrets.Node;
                }
            })
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<SecretOptions>, SecretOptionsValidator>();
        if (!string.IsNullOrWhiteSpace(options.Redis.Configuration))
        {
            services.AddSingleton<ILeaseStore, RedisLeaseStore>();
        }

        services.TryAddSingleton<ILeaseStore>(sp => new InMemoryLeaseStore(sp.GetRequiredService<TimeProvider>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ISecretEngineFactory, PostgresEngineFactory>());
        services.AddSingleton<SecretEngines>();
        services.AddSingleton<SecretMetrics>();
        services.AddSingleton<SecretLeases>();
        services.AddSingleton<LeaseReaper>();
        services.AddHostedService(sp => sp.GetRequiredService<LeaseReaper>());
        services.AddHealthChecks().AddCheck<SecretEnginesHealthCheck>(HealthCheckName);
        services.Configure<GrpcHealthChecksOptions>(health => health.Services.Map(HealthServices.Prefix + HealthCheckName, c => c.Name == HealthCheckName));
        return services;
    }

    public static WebApplication MapSecrets(this WebApplication app)
    {
        app.MapGrpcService<LeaseAdminGrpcService>();
        return app;
    }
}

/// <summary>
/// Each engine in policy: reachable with the admin credential, and every role policy grants on it
/// exists. Degraded (not unhealthy) when one is not: tokens still issue; that engine's leases are refused.
/// </summary>
internal sealed class SecretEnginesHealthCheck(IPolicyProvider policy, SecretEngines engines) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var current = policy.Current;
        if (current.SecretEngines.Count == 0)
        {
            return HealthCheckResult.Healthy("no secret engines");
        }

        var data = new Dictionary<string, object>(StringComparer.Ordinal);
        foreach (var engine in current.SecretEngines)
        {
            var roles = current.Agents.SelectMany(a => a.Phases.Values).SelectMany(p => p.Secrets ?? []).Where(g => g.Engine == engine.Name).Select(g => g.Role).Distinct(StringComparer.Ordinal).ToArray();
            string? problem;
            try
            {
                problem = await engines.For(engine).CheckAsync(roles, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                problem = ex.Message;
            }

            data[engine.Name] = problem ?? "ok";
        }

        var down = data.Where(d => (string)d.Value != "ok").Select(d => $"{d.Key}: {d.Value}").ToArray();
        return down.Length == 0
            ? HealthCheckResult.Healthy("secret engines ok", data)
            : HealthCheckResult.Degraded(string.Join("; ", down), data: data);
    }
}
