using System.CommandLine;
using System.CommandLine.Parsing;
using Broker.Cli.Dev;
using Broker.Client;

namespace Broker.Cli.Commands;

/// <summary>
/// How issue and end-task reach the broker and prove who they are: --broker, then exactly one
/// of --svid, --svid-file, or --dev with --agent.
/// </summary>
internal sealed class ConnectionOptions
{
    public const string DefaultBrokerAddress = "http://127.0.0.1:5080";
    public const string BrokerAddressVariable = "BROKER_ADDRESS";

    public Option<string> Broker { get; } = new("--broker")
    {
        Description = $"Broker gRPC address (https://, or http:// for plaintext HTTP/2 on loopback). Default: ${BrokerAddressVariable}, else {DefaultBrokerAddress}; with --dev, the address in dev.json.",
        HelpName = "URL",
    };

    public Option<string> Svid { get; } = new("--svid")
    {
        Description = "A JWT-SVID to attest with. Other local users can read command lines: prefer --svid-file.",
        HelpName = "TOKEN",
    };

    public Option<FileInfo> SvidFile { get; } = new("--svid-file")
    {
        Description = "A file holding the JWT-SVID, e.g. the one SPIRE's spiffe-helper keeps rotated.",
        HelpName = "PATH",
    };

    public Option<bool> Dev { get; } = new("--dev")
    {
        Description = "Use the local dev broker: its address and trust key come from <dev-dir>/dev.json, and a fresh JWT-SVID is minted for --agent.",
    };

    public Option<string> Agent { get; } = new("--agent")
    {
        Description = "With --dev: the SPIFFE ID to mint the JWT-SVID for; must be in the dev trust domain, e.g. spiffe://dev.local/agents/demo.",
        HelpName = "SPIFFE_ID",
    };

    public Option<string> DevDir { get; } = new("--dev-dir")
    {
        Description = $"With --dev: the folder the dev broker wrote (relative to the current folder).",
        HelpName = "DIR",
        DefaultValueFactory = _ => DevManifest.DefaultDirectory,
    };

    public Option<string> CorrelationId { get; } = new("--correlation-id")
    {
        Description = $"An id sent as the {BrokerAgentClient.CorrelationIdHeader} header, to find this call in the broker's logs.",
        HelpName = "ID",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Broker);
        command.Options.Add(Svid);
        command.Options.Add(SvidFile);
        command.Options.Add(Dev);
        command.Options.Add(Agent);
        command.Options.Add(DevDir);
        command.Options.Add(CorrelationId);
        command.Validators.Add(Validate);
    }

    private void Validate(CommandResult result)
    {
        var chosen = new Option[] { Svid, SvidFile, Dev }
            .Where(option => result.GetResult(option) is { Implicit: false })
            .Select(option => option.Name)
            .ToList();
        if (chosen.Count == 0)
        {
            result.AddError("Say how to attest: --svid TOKEN, --svid-file PATH, or --dev --agent SPIFFE_ID.");
        }
        else if (chosen.Count > 1)
        {
            result.AddError($"Attest one way only; got {string.Join(" and ", chosen)}.");
        }

        var dev = result.GetValue(Dev);
        var hasAgent = result.GetResult(Agent) is not null;
        if (dev && !hasAgent)
        {
            result.AddError("--dev needs --agent SPIFFE_ID, the workload to mint a dev JWT-SVID for.");
        }
        else if (!dev && hasAgent)
        {
            result.AddError("--agent is only used with --dev.");
        }

        if (result.GetValue(Broker) is { } address && !IsBrokerAddress(address))
        {
            result.AddError($"--broker must be an absolute http:// or https:// URL.");
        }
    }

    /// <summary>Resolves the address and attestation source, loading the dev environment when asked.</summary>
    public (string Address, IAttestationSource Attestation) Resolve(ParseResult parseResult, CliContext context)
    {
        var explicitAddress = parseResult.GetValue(Broker);
        if (parseResult.GetValue(Dev))
        {
            var manifest = DevManifest.Load(parseResult.GetValue(DevDir)!);
            using var minter = DevSvidMinter.FromManifest(manifest, context.Time);
            var svid = minter.Mint(parseResult.GetValue(Agent)!, DevSvidMinter.DefaultTtl);
            var address = explicitAddress ?? manifest.GrpcAddress;
            if (!IsBrokerAddress(address))
            {
                throw CliException.Local($"grpc_address in dev.json is not an http(s) URL.");
            }

            return (address, new StaticJwtSvidSource(svid));
        }

        var resolved = explicitAddress ?? context.GetEnvironmentVariable(BrokerAddressVariable) ?? DefaultBrokerAddress;
        if (!IsBrokerAddress(resolved))
        {
            throw CliException.Usage($"${BrokerAddressVariable} must be an absolute http:// or https:// URL.");
        }

        if (parseResult.GetValue(SvidFile) is { } file)
        {
            if (!file.Exists)
            {
                throw CliException.Local($"SVID file '{file.FullName}' does not exist.");
            }

            return (resolved, new FileJwtSvidSource(file.FullName));
        }

        var inline = parseResult.GetValue(Svid);
        if (string.IsNullOrWhiteSpace(inline))
        {
            throw CliException.Usage("--svid is empty.");
        }

        return (resolved, new StaticJwtSvidSource(inline));
    }

    public string? GetCorrelationId(ParseResult parseResult)
    {
        var id = parseResult.GetValue(CorrelationId);
        if (id is not null && (id.Length is 0 or > BrokerAgentClient.MaxCorrelationIdLength || id.Any(c => c is < '!' or > '~')))
        {
            throw CliException.Usage($"--correlation-id must be 1 to {BrokerAgentClient.MaxCorrelationIdLength} printable ASCII characters without spaces.");
        }

        return id;
    }

    /// <summary>Runs a call; a failure that never reached the broker names the address tried.</summary>
    public static async Task<T> CallAsync<T>(string address, Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (BrokerRefusalException ex) when (ex.Refusal is { IsUnavailable: true, Reason: null })
        {
            throw new CliException(ExitCodes.Unavailable, $"cannot reach the broker at {address} ({ex.Refusal.Status}): {ex.Refusal.Message}");
        }
    }

    private static bool IsBrokerAddress(string text) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps);
}
