using Broker.SampleMcpServer;

WebApplication app;
try
{
    app = SampleMcpApp.Build(args);
}
catch (SampleMcpConfigurationException e)
{
    foreach (var problem in e.Problems)
    {
        Console.Error.WriteLine(problem);
    }

    return 2;
}

await app.RunAsync();
return 0;
