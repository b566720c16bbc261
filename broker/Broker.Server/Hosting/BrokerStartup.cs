using Broker.Core.Policy;
using Broker.Core.Revocation;
using Broker.Redis;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Broker.Server.Hosting;

/// <summary>
/// What must happen before the node answers its first call, awaited in the host's
/// <c>StartingAsync</c> phase, which every host runs before any server starts listening:
/// the policy is audited and put in force, the dev Redis gets its revocation epoch, and the
/// node reads every revocation (or starts stale and refuses issuance until it catches up).
/// A failure here stops start-up, as a bad setting does.
/// </summary>
internal sealed class BrokerStartup(IServiceProvider services, IOptions<BrokerOptions> options) : IHostedLifecycleService
{
    /// <summary>The longest start-up waits for Redis; past it the node starts unready and says so in health.</summary>
    private static readonly TimeSpan StateWait = TimeSpan.FromSeconds(5);

    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        await services.GetRequiredService<FilePolicyProvider>().OpenAsync(cancellationToken);
        await DevEnvironment.EnsureRevocationEpochAsync(services);

        using (var initial = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            initial.CancelAfter(StateWait);
            try
            {
                await services.GetRequiredService<RevocationFeed>().SyncAsync(initial.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Stale until the feed's loop succeeds; health says so.
            }
        }

        if (services.GetService<IConnectionMultiplexer>() is { } redis)
        {
            var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("Broker.Redis.Durability");
            try
            {
                await RedisDurabilityCheck.WarnAsync(redis, options.Value.RevocationMinReplicas, logger).WaitAsync(StateWait, cancellationToken);
            }
            catch (TimeoutException)
            {
                // Redis is not answering yet; the state health check reports it.
            }
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
