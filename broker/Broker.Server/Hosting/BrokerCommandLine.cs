namespace Broker.Server.Hosting;

/// <summary>Turns the few flags people type into configuration keys, and greets --dev users.</summary>
public static class BrokerCommandLine
{
    public static string[] Normalize(string[] args)
    {
        var result = new List<string>(args.Length);
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--dev":
                    result.Add("--Broker:Dev=true");
                    break;
                case "--dev-dir" when i + 1 < args.Length:
                    result.Add($"--Broker:DevDirectory={args[++i]}");
                    break;
                case "--grpc-port" when i + 1 < args.Length:
                    result.Add($"--Broker:DevGrpcPort={args[++i]}");
                    break;
                case "--http-port" when i + 1 < args.Length:
                    result.Add($"--Broker:DevHttpPort={args[++i]}");
                    break;
                case "--policy" when i + 1 < args.Length:
                    result.Add($"--Broker:PolicyPath={args[++i]}");
                    break;
                case "--postgres" when i + 1 < args.Length:
                    result.Add($"--Broker:DevPostgres={args[++i]}");
                    break;
                case "--acknowledge-tamper" when i + 1 < args.Length:
                    result.Add($"--Broker:Audit:AcknowledgeTamper={args[++i]}");
                    break;
                case "--redis" when i + 1 < args.Length:
                    result.Add($"--Broker:Redis:Configuration={args[++i]}");
                    break;
                default:
                    result.Add(args[i]);
                    break;
            }
        }

        return [.. result];
    }

    public static void PrintDevBanner(WebApplication app)
    {
        if (app.Services.GetService<DevManifest>() is not { } dev)
        {
            return;
        }

        Console.WriteLine($"""

            ================================================================
             Broker is running in DEV MODE: in-memory state, a generated
             signing key, a dev trust domain. Never use --dev in production.
            ================================================================
             gRPC (h2c):   {dev.GrpcAddress}
             issuer/JWKS:  {dev.Issuer}/.well-known/jwks.json
             policy:       {dev.PolicyFile}   (edit it; reloads on save)
             audit log:    {dev.AuditFile}
             resource-server token (24 h, for the SDK and the sample):
                           {Path.Combine(Path.GetFullPath(app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<BrokerOptions>>().Value.DevDirectory), DevResourceServerToken.FileName)}

             Next, in another terminal:
               dotnet run --project broker/Broker.Cli -- issue --dev \
                 --agent spiffe://dev.local/agents/demo --task demo-1 \
                 --phase planning --scope repo:read --audience https://api.dev.local
            """);
    }
}
