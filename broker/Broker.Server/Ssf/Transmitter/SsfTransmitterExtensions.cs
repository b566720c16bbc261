using Broker.Core.Audit;
using Broker.Core.Revocation;
using Broker.Core.Signing;
using Broker.Core.Ssf.Transmitter;
using Broker.Redis;
using Broker.Server.Hosting;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Broker.Server.Ssf.Transmitter;

/// <summary>
/// Broker as a Shared Signals transmitter (docs/ssf.md): served when the node has Redis, whose
/// streams and queues are the fleet's shared state. A bad <c>Broker:Ssf:Transmitter</c> setting
/// stops start-up with its BRK id.
/// </summary>
internal static class SsfTransmitterExtensions
{
    public static IServiceCollection AddSsfTransmitter(this IServiceCollection services, BrokerOptions broker, IConfiguration configuration)
    {
        var settings = configuration.GetSection(SsfTransmitterOptions.Section).Get<SsfTransmitterOptions>() ?? new SsfTransmitterOptions();
        var problems = SsfTransmitterOptionsValidator.Problems(settings);
        if (problems.Count > 0)
        {
            throw new BrokerStartupException(problems);
        }

        services.AddOptions<SsfTransmitterOptions>().BindConfiguration(SsfTransmitterOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<SsfTransmitterOptions>, SsfTransmitterOptionsValidator>();
        if (string.IsNullOrWhiteSpace(broker.Redis.Configuration))
        {
            return services;
        }

        services.AddSingleton<ISsfStreamStore>(sp => new RedisSsfStreamStore(sp.GetRequiredService<IConnectionMultiplexer>(), sp.GetRequiredService<RedisKeys>()));
        services.AddSingleton(sp => new SecurityEventWriter(sp.GetRequiredService<SigningKeyRing>(), broker.Issuer, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp => new SsfQueuePolicy(sp.GetRequiredService<IOptions<SsfTransmitterOptions>>(), broker.MaxTokenLifetime, broker.ClockSkew, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<SsfQueueSignals>();
        services.AddSingleton<SsfStreamService>();
        services.AddSingleton<SsfEmitter>();
        services.AddHostedService(sp => sp.GetRequiredService<SsfEmitter>());
        services.AddHttpClient(SsfPusher.HttpClientName)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false });
        services.AddSingleton<SsfPusher>();
        services.AddHostedService(sp => sp.GetRequiredService<SsfPusher>());
        services.AddSingleton<SsfRequestRunner>();
        services.AddSingleton<SsfStreamEndpoints>();
        services.AddSingleton<SsfPollEndpoint>();
        return services;
    }

    public static IEndpointRouteBuilder MapSsfTransmitter(this IEndpointRouteBuilder endpoints)
    {
        if (endpoints.ServiceProvider.GetService<ISsfStreamStore>() is null)
        {
            return endpoints;
        }

        var issuer = endpoints.ServiceProvider.GetRequiredService<IOptions<BrokerOptions>>().Value.Issuer;
        endpoints.MapGet(SsfTransmitterPaths.Metadata, (HttpResponse response) => SsfConfigurationMetadata.WriteAsync(response, issuer));
        endpoints.MapPost(SsfTransmitterPaths.Streams, (HttpContext context, SsfStreamEndpoints streams) => streams.CreateAsync(context));
        endpoints.MapGet(SsfTransmitterPaths.Streams, (HttpContext context, SsfStreamEndpoints streams) => streams.ReadAsync(context));
        endpoints.MapPatch(SsfTransmitterPaths.Streams, (HttpContext context, SsfStreamEndpoints streams) => streams.UpdateAsync(context, replace: false));
        endpoints.MapPut(SsfTransmitterPaths.Streams, (HttpContext context, SsfStreamEndpoints streams) => streams.UpdateAsync(context, replace: true));
        endpoints.MapDelete(SsfTransmitterPaths.Streams, (HttpContext context, SsfStreamEndpoints streams) => streams.DeleteAsync(context));
        endpoints.MapPost(SsfTransmitterPaths.Verification, (HttpContext context, SsfStreamEndpoints streams) => streams.VerifyAsync(context));
        endpoints.MapPost(SsfTransmitterPaths.PollPrefix + "{streamId}", (HttpContext context, string streamId, SsfPollEndpoint poll) => poll.HandleAsync(context, streamId));
        return endpoints;
    }
}
