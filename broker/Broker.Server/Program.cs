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
    await Console.Error.WriteLineAsync(ex.Message);
    return 2;
}
