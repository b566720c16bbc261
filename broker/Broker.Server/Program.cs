using Broker.Server.Hosting;

if (BrokerCommandLine.WantsHelp(args))
{
    Console.Write(BrokerCommandLine.Help);
    return BrokerExitCodes.Stopped;
}

try
{
    var builder = WebApplication.CreateBuilder(BrokerCommandLine.Normalize(args));
    var logGate = new StartupLogGate();
    logGate.Apply(builder);
    builder.AddBroker();
    var app = builder.Build();
    logGate.OpenWhenListening(app);
    app.MapBroker();
    await app.RunAsync();
    return BrokerExitCodes.Stopped;
}
catch (Exception ex) when (StartupFailure.Describe(ex) is { } failure)
{
    // Known start-up failures are one line with a stable id (docs/errors.md), not a stack trace.
    await Console.Error.WriteLineAsync(failure.Message);
    return failure.ExitCode;
}
