using System.CommandLine;
using Broker.Cli.Dev;
using Broker.Cli.Internal;

namespace Broker.Cli.Commands;

/// <summary><c>brokerctl dev ...</c>: helpers for the local dev broker (<c>Broker.Server --dev</c>).</summary>
internal static class DevCommand
{
    public static Command Create(CliContext context, HelpTexts help)
    {
        var dev = new Command("dev", "Helpers for the local dev broker started with 'dotnet run --project broker/Broker.Server -- --dev'.");
        dev.Subcommands.Add(CreateSvid(context, help));
        help.Add(dev, """
            Examples:
              brokerctl dev svid --agent spiffe://dev.local/agents/demo
            """);
        return dev;
    }

    private static Command CreateSvid(CliContext context, HelpTexts help)
    {
        var agent = new Option<string>("--agent")
        {
            Description = "The workload's SPIFFE ID (the sub claim); must be in the dev trust domain, e.g. spiffe://dev.local/agents/demo.",
            HelpName = "SPIFFE_ID",
            Required = true,
        };
        var ttl = IssueCommand.TtlOption($"How long the SVID is valid, e.g. 90s, 5m; at most {Durations.Format(DevSvidMinter.MaxTtl)}. Default: {Durations.Format(DevSvidMinter.DefaultTtl)}.", DevSvidMinter.DefaultTtl);
        var devDir = new Option<string>("--dev-dir")
        {
            Description = "The folder the dev broker wrote (it holds dev.json), relative to the current folder.",
            HelpName = "DIR",
            DefaultValueFactory = _ => DevManifest.DefaultDirectory,
        };

        var command = new Command(
            "svid",
            "Mint a JWT-SVID for a dev workload with the dev trust domain's key, as SPIRE would: ES256, header alg/kid/typ, "
            + "claims sub, aud (the broker's audience from dev.json), iat, exp, jti. Prints it to stdout. Dev only: production SVIDs come from SPIRE.");
        command.Options.Add(agent);
        command.Options.Add(ttl);
        command.Options.Add(devDir);
        help.Add(command, """
            Examples:
              SVID=$(brokerctl dev svid --agent spiffe://dev.local/agents/demo --ttl 10m)
              brokerctl issue --svid "$SVID" --task T-1 --phase planning --scope repo:read --audience https://api.dev.local
              brokerctl dev svid --agent spiffe://dev.local/agents/demo | brokerctl token decode -
            """);

        command.SetAction(BrokerCtl.Guarded(context, (parseResult, _) =>
        {
            var manifest = DevManifest.Load(parseResult.GetValue(devDir)!);
            using var minter = DevSvidMinter.FromManifest(manifest, context.Time);
            context.Out.WriteLine(minter.Mint(parseResult.GetValue(agent)!, parseResult.GetValue(ttl) ?? DevSvidMinter.DefaultTtl));
            return Task.FromResult(ExitCodes.Success);
        }));
        return command;
    }
}
