using System.CommandLine;
using Broker.Cli.Operators;
using Broker.Core.Signing;

namespace Broker.Cli.Commands;

/// <summary><c>brokerctl operator-key generate</c>: a key pair for key-based operator trust.</summary>
internal static class OperatorKeyCommand
{
    public const string PrivateKeyFile = "operator.key.pem";

    public const string JwksFile = "operators.jwks.json";

    public static Command Create(CliContext context, HelpTexts help)
    {
        var group = new Command("operator-key", "Keys for operators without an IdP: the broker trusts the public JWKS (Broker:Operators:KeyFile); the private key mints tokens (brokerctl operator-token).");
        group.Subcommands.Add(CreateGenerate(context, help));
        return group;
    }

    private static Command CreateGenerate(CliContext context, HelpTexts help)
    {
        var output = new Option<string>("--out")
        {
            Description = $"The folder to write {PrivateKeyFile} (the private key, mode 0600) and {JwksFile} (the public JWKS) into; created if missing. Existing files are never replaced.",
            HelpName = "DIR",
            Required = true,
        };
        var command = new Command(
            "generate",
            $"Generate an EC P-256 operator key: {PrivateKeyFile} signs operator tokens (keep it with the people who mint them), "
            + $"{JwksFile} is what Broker:Operators:KeyFile names on every node. Prints the two paths and the key id.");
        command.Options.Add(output);
        help.Add(command, """
            Examples:
              brokerctl operator-key generate --out ./operator-keys
              # on every node:  Broker__Operators__KeyFile=./operator-keys/operators.jwks.json Broker__Operators__Issuer=local-operators

            To rotate, generate another key and list both public keys in the JWKS (its "keys" array) until
            tokens from the old one have expired; nodes read the file at start.
            """);

        command.SetAction(BrokerCtl.Guarded(context, (parseResult, _) =>
        {
            var directory = parseResult.GetValue(output)!;
            var keyPath = Path.Combine(directory, PrivateKeyFile);
            var jwksPath = Path.Combine(directory, JwksFile);
            foreach (var path in new[] { keyPath, jwksPath }.Where(File.Exists))
            {
                throw CliException.Local($"'{path}' exists; operator-key generate never replaces a key. Choose another --out folder.");
            }

            Directory.CreateDirectory(directory);
            using var key = OperatorSigningKey.Generate();
            WritePrivate(keyPath, key.ExportPrivatePem());
            File.WriteAllBytes(jwksPath, JwksWriter.Write([key.PublicJwk]));
            OutputFormat.WriteTable(context.Out,
            [
                ("private key", $"{keyPath}  (0600: mints operator tokens; keep it off the broker nodes)"),
                ("public JWKS", $"{jwksPath}  (Broker:Operators:KeyFile on every node)"),
                ("kid", $"{key.KeyId}  ({key.Algorithm})"),
            ]);
            return Task.FromResult(ExitCodes.Success);
        }));
        return command;
    }

    /// <summary>Creates the file readable by its owner only before any key byte is written.</summary>
    private static void WritePrivate(string path, string pem)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using var stream = new FileStream(path, options);
        using var writer = new StreamWriter(stream);
        writer.Write(pem);
    }
}
