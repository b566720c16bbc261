namespace Broker.Server.Hosting;

/// <summary>
/// The generic host logs "Hosting failed to start" with the whole stack trace before the exception
/// reaches Program, which prints it as one line (<see cref="StartupFailure"/>). Until the node
/// listens, only the host's critical entries pass; afterwards every entry does, as usual.
/// </summary>
public sealed class StartupLogGate
{
    private const string HostCategory = "Microsoft.Extensions.Hosting.Internal.Host";
    private volatile bool _listening;

    public void Apply(WebApplicationBuilder builder) =>
        builder.Logging.AddFilter(HostCategory, level => level >= LogLevel.Information && (_listening || level >= LogLevel.Critical));

    public void OpenWhenListening(WebApplication app) => app.Lifetime.ApplicationStarted.Register(() => _listening = true);
}
