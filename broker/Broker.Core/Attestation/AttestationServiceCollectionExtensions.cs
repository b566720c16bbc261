using Broker.Core.Attestation;
using Broker.Core.Policy;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers workload attestation. Every registration is TryAdd, so a host can replace any of them.</summary>
public static class AttestationServiceCollectionExtensions
{
    /// <summary>The named <see cref="HttpClient"/> trust bundles and OIDC discovery are fetched with.</summary>
    public const string BundleHttpClientName = "Broker.Attestation.TrustBundles";

    /// <summary>
    /// Adds <see cref="IWorkloadAttestor"/> (a singleton <see cref="WorkloadAttestor"/>) with
    /// validated <see cref="AttestationOptions"/>. Needs an <see cref="IPolicyProvider"/>;
    /// uses the registered <see cref="TimeProvider"/> (the system clock when none is).
    /// </summary>
    public static IServiceCollection AddBrokerAttestation(this IServiceCollection services, Action<AttestationOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);

        var options = services.AddOptions<AttestationOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<AttestationOptions>, AttestationOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);

        services.AddHttpClient(BundleHttpClientName)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                // A redirect could move a policy-named HTTPS URL somewhere policy never named.
                AllowAutoRedirect = false,

                // The attestor keeps one client for its lifetime; recycle connections so DNS
                // changes of a bundle endpoint are still picked up.
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            })
            .SetHandlerLifetime(Timeout.InfiniteTimeSpan);

        services.TryAddSingleton<WorkloadAttestor>(sp => new WorkloadAttestor(
            sp.GetRequiredService<IPolicyProvider>(),
            sp.GetRequiredService<IOptions<AttestationOptions>>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<IHttpClientFactory>().CreateClient(BundleHttpClientName),
            sp.GetService<ILogger<WorkloadAttestor>>()));
        services.TryAddSingleton<IWorkloadAttestor>(sp => sp.GetRequiredService<WorkloadAttestor>());
        return services;
    }
}
