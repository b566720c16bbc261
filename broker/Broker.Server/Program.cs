using Broker.Server.Hosting;

try
{
    var builder = WebApplication.CreateBuilder(BrokerCommandLine.Normalize(args));
    builder.AddBroker();
    var app = builder.Build();
    app.MapBroker();
    BrokerCommandLine.PrintDevBanner(app);
    await app.RunAsync();
    return 0;
}
catch (BrokerStartupException ex)
{
    // Configuration is wrong: restarting will not help.
    await Console.Error.WriteLineAsync(ex.Message);
    return 2;
}
catch (Broker.Core.Audit.AuditTamperedException ex)
{
    // The audit log was tampered with: an operator must look, and may acknowledge (docs/audit.md).
    await Console.Error.WriteLineAsync(ex.Message);
    return 10;
}
catch (StackExchange.Redis.RedisConnectionException ex)
{
    // Only Sentinel mode fails here (a single endpoint starts unhealthy and waits): no Sentinel
    // answered. Transient by nature, so a distinct code that supervisors restart on.
    await Console.Error.WriteLineAsync($"Broker cannot start: no Redis Sentinel answered ({ex.FailureType}). It will be retried by the supervisor.");
    return 3;
}
