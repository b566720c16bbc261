using System.CommandLine;
using Broker.Core.Policy;

namespace Broker.Cli.Commands;

/// <summary><c>brokerctl policy ...</c>: work with policy files before they reach a broker.</summary>
internal static class PolicyCommand
{
    public static Command Create(CliContext context, HelpTexts help)
    {
        var policy = new Command("policy", "Work with Broker policy files (YAML, format in docs/policy.md).");
        policy.Subcommands.Add(CreateValidate(context, help));
        help.Add(policy, """
            Examples:
              brokerctl policy validate deploy/policy/sample-policy.yaml
            """);
        return policy;
    }

    private static Command CreateValidate(CliContext context, HelpTexts help)
    {
        var file = new Argument<FileInfo>("FILE")
        {
            Description = "The policy file. Files it references (trust bundles) are resolved against its folder and must exist.",
        };
        var command = new Command(
            "validate",
            "Check a policy file exactly as the broker loads it. Prints 'OK <digest>' (the digest tokens and audit records carry) and exits 0, "
            + "or prints every error as file:line:col: message on stderr and exits 1.");
        command.Arguments.Add(file);
        help.Add(command, """
            Examples:
              brokerctl policy validate deploy/policy/sample-policy.yaml
              # In CI, before merging a policy change:
              brokerctl policy validate policy.yaml || exit 1
            """);

        command.SetAction(BrokerCtl.Guarded(context, (parseResult, _) =>
        {
            var path = parseResult.GetValue(file)!;
            if (Directory.Exists(path.FullName))
            {
                throw CliException.Local($"'{path.FullName}' is a folder, not a policy file.");
            }

            if (!path.Exists)
            {
                throw CliException.Local($"policy file '{path.FullName}' does not exist.");
            }

            var result = PolicyLoader.LoadFile(path.FullName);
            if (result.Policy is { } loaded)
            {
                context.Out.WriteLine($"OK {loaded.Digest}");
                return Task.FromResult(ExitCodes.Success);
            }

            foreach (var error in result.Errors)
            {
                context.Error.WriteLine(error.ToString());
            }

            context.Error.WriteLine($"{path.FullName}: invalid policy ({result.Errors.Count} error{(result.Errors.Count == 1 ? "" : "s")})");
            return Task.FromResult(ExitCodes.Refused);
        }));
        return command;
    }
}
