using Broker.Cli;

return await BrokerCtl.RunAsync(args, Console.Out, Console.Error);
