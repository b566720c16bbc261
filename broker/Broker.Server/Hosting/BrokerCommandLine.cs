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
                    result.Add($"--{DevPorts.GrpcKey}={args[++i]}");
                    break;
                case "--http-port" when i + 1 < args.Length:
                    result.Add($"--{DevPorts.HttpKey}={args[++i]}");
                    break;
                case "--audit-dir" when i + 1 < args.Length:
                    result.Add($"--Broker:AuditPath={args[++i]}");
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

    /// <summary>Whether the command line asks for <see cref="Help"/> (then nothing starts).</summary>
    public static bool WantsHelp(string[] args) => args.Any(a => a is "--help" or "-h" or "-?");

    public const string Help = """
        Usage: Broker.Server [options] [--Section:Key=value ...]

        Broker: short-lived, task- and phase-scoped credentials for AI agent workloads.

        Options:
          --dev                     dev mode: loopback only, in-memory state (or --redis), generated keys,
                                    a dev trust domain and sample policy in the dev folder. Never in production.
          --dev-dir <folder>        the dev folder (default .dev): keys, policy, dev.json, audit log
          --grpc-port <port>        dev gRPC port, plaintext HTTP/2 (default 5080)
          --http-port <port>        dev HTTP port: OAuth, discovery, JWKS, console, /healthz (default 5081)
          --audit-dir <folder>      the audit folder (Broker:AuditPath; in dev default <dev-dir>/audit).
                                    One node per folder: each node of a cluster needs its own.
          --policy <file>           the policy file (Broker:PolicyPath)
          --redis <configuration>   StackExchange.Redis configuration string (Broker:Redis:Configuration)
          --postgres <connection>   dev only: hand out PostgreSQL logins from this server (docs/secrets.md)
          --acknowledge-tamper <fingerprint>
                                    start on an audit log that start-up found tampered with (BRK1040)
          -h, --help                show this help

        Settings (any --Section:Key=value, environment Section__Key, or appsettings.json):
          Broker:Issuer                     https:// URL of this broker: the iss of every token
          Broker:PolicyPath                 the policy YAML file
          Broker:AuditPath                  the audit log folder (one writer per folder)
          Broker:Audit:CheckpointKeyPath    PEM EC P-256 key that signs audit checkpoints
          Broker:Signing:Keys:0:Path        PEM EC token-signing key (more with NotBefore for rotation)
          Broker:Redis:Configuration        production state, revocations and approvals
          Broker:Operators:Authority        OIDC issuer of operator tokens (admin API, console)
          Broker:Operators:KeyFile          or: JWKS of trusted operator public keys, with
          Broker:Operators:Issuer           the iss their tokens carry (brokerctl operator-token)
          Broker:NodeId                     this node's id in audit records (default: kept in the audit folder)
          Kestrel:Endpoints:<name>:Url      listeners outside --dev (gRPC needs HTTP/2)
        Every setting: README.md (Configuration) and docs/operations.md.

        Exit codes:
          0   stopped cleanly
          2   start-up refused: configuration is wrong (BRK10xx..BRK11xx ids on stderr); restarting will not help
          3   Redis Sentinel mode: no Sentinel answered (transient; a supervisor may restart)
          10  the node's audit log was tampered with (BRK1040)
          11  the audit folder is in use by another broker process (BRK1160)
          12  a listener could not bind: port in use or not permitted (BRK1161)

        Examples:
          Broker.Server --dev
          Broker.Server --dev --grpc-port 5082 --http-port 5083 --audit-dir .dev/audit-2
          Broker__Issuer=https://broker.example.org Broker.Server --Broker:PolicyPath=/etc/broker/policy.yaml

        """;

    /// <summary>In --dev, once Kestrel listens: how to get a token, naming the addresses it actually bound.</summary>
    internal static void PrintDevBanner(WebApplication app, DevManifest dev, string devDirectory)
    {
        var bound = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
            .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()?.Addresses.ToList() ?? [];
        var grpcPort = new Uri(dev.GrpcAddress).Port;
        var grpc = bound.FirstOrDefault(a => new Uri(a).Port == grpcPort) ?? dev.GrpcAddress;
        var http = string.Join(", ", bound.Where(a => a != grpc));
        Console.WriteLine(DevBanner(dev, grpc, http, Path.Combine(Path.GetFullPath(devDirectory), DevResourceServerToken.FileName)));
    }

    internal static string DevBanner(DevManifest dev, string grpc, string http, string resourceServerToken) => $"""

        ================================================================
         Broker is running in DEV MODE: in-memory state, a generated
         signing key, a dev trust domain. Never use --dev in production.
        ================================================================
         gRPC (h2c):   {grpc}
         HTTP:         {http}
         issuer/JWKS:  {dev.Issuer}/.well-known/jwks.json
         policy:       {dev.PolicyFile}   (edit it; reloads on save)
         audit log:    {dev.AuditFile}
         resource-server token (24 h, for the SDK and the sample):
                       {resourceServerToken}

         Next, in another terminal (the first call builds brokerctl):
           dotnet run --project broker/Broker.Cli -- issue --dev \
             --agent spiffe://dev.local/agents/demo --task demo-1 \
             --phase planning --scope repo:read --audience https://api.dev.local
         then call the built broker/Broker.Cli/bin/Debug/net10.0/brokerctl directly.
        """;
}
