using System.CommandLine;
using Broker.Cli.Internal;
using Broker.Cli.Operators;

namespace Broker.Cli.Commands;

/// <summary>
/// <c>brokerctl operator-token</c>: mints an operator token with a key a broker trusts through
/// <c>Broker:Operators:KeyFile</c>, for installations without an IdP. Prints only the token.
/// </summary>
internal static class OperatorTokenCommand
{
    public static readonly TimeSpan DefaultTtl = TimeSpan.FromMinutes(10);

    public const int MaxRoles = 32;

    public static Command Create(CliContext context, HelpTexts help)
    {
        var key = new Option<string>("--key")
        {
            Description = "The operator private key (PEM, EC P-256 or RSA 2048+), e.g. the operator.key.pem 'brokerctl operator-key generate' wrote. "
                + "The broker trusts its public half through Broker:Operators:KeyFile.",
            HelpName = "FILE",
            Required = true,
        };
        var issuer = new Option<string>("--issuer")
        {
            Description = "The token's iss: the broker's Broker:Operators:Issuer.",
            HelpName = "ISSUER",
            Required = true,
        };
        var name = new Option<string>("--name")
        {
            Description = "The operator's name (the token's sub), recorded as the actor of every admin call made with it.",
            HelpName = "NAME",
            Required = true,
        };
        var roles = new Option<string[]>("--role")
        {
            Description = "A role or group the operator holds (responder, approver, iam-admin, auditor, telemetry-reader, or a group the policy's approvers name); repeat for several.",
            HelpName = "ROLE",
            Required = true,
            Arity = ArgumentArity.OneOrMore,
        };
        roles.Validators.Add(result =>
        {
            var values = result.GetValueOrDefault<string[]>() ?? [];
            if (values.Length > MaxRoles)
            {
                result.AddError($"at most {MaxRoles} --role values.");
            }

            if (values.Any(r => r.Length is 0 or > 128 || r.Any(c => char.IsControl(c) || char.IsWhiteSpace(c))))
            {
                result.AddError("--role must be 1 to 128 characters without spaces or control characters.");
            }
        });
        var audience = new Option<string>("--audience")
        {
            Description = $"The token's aud: the broker's Broker:Operators:Audience. Default: {OperatorTokenMinter.DefaultAudience}.",
            HelpName = "AUDIENCE",
            DefaultValueFactory = _ => OperatorTokenMinter.DefaultAudience,
        };
        var ttl = IssueCommand.TtlOption(
            $"How long the token is valid, e.g. 10m, 1h; at most {Durations.Format(OperatorTokenMinter.MaxLifetime)}. Default: {Durations.Format(DefaultTtl)}.",
            DefaultTtl);
        var kid = new Option<string>("--kid")
        {
            Description = "The kid header, when the broker's key file names the key otherwise. Default: the key's RFC 7638 thumbprint, as 'operator-key generate' writes it.",
            HelpName = "KID",
        };

        var command = new Command(
            "operator-token",
            "Mint an operator token for the admin API (revoke, approvals, freeze, audit) with a private key whose public half the broker trusts "
            + "(Broker:Operators:KeyFile with Broker:Operators:Issuer). For installations without an OIDC IdP; prints only the token.");
        command.Options.Add(key);
        command.Options.Add(issuer);
        command.Options.Add(name);
        command.Options.Add(roles);
        command.Options.Add(audience);
        command.Options.Add(ttl);
        command.Options.Add(kid);
        command.Validators.Add(result =>
        {
            if (result.GetValue(ttl) is { } lifetime && lifetime > OperatorTokenMinter.MaxLifetime)
            {
                result.AddError($"--ttl must be at most {Durations.Format(OperatorTokenMinter.MaxLifetime)}: operator tokens are short-lived.");
            }
        });
        help.Add(command, """
            Examples:
              export BROKER_OPERATOR_TOKEN=$(brokerctl operator-token --key operator.key.pem \
                --issuer local-operators --name alice --role responder --ttl 10m)
              brokerctl revoke task T-1 --reason "INC-311: agent chained tools outside its plan"

              BROKER_OPERATOR_TOKEN=$(brokerctl operator-token --key operator.key.pem \
                --issuer local-operators --name ann --role approver) brokerctl approvals approve APPROVAL_ID

            The private key never leaves this machine; the broker holds only the public JWKS.
            """);

        command.SetAction(BrokerCtl.Guarded(context, (parseResult, _) =>
        {
            var signingKey = OperatorSigningKey.Load(parseResult.GetValue(key)!);
            using var minter = new OperatorTokenMinter(
                signingKey,
                parseResult.GetValue(kid) ?? signingKey.KeyId,
                parseResult.GetValue(issuer)!,
                parseResult.GetValue(audience)!,
                context.Time);
            context.Out.WriteLine(minter.Mint(parseResult.GetValue(name)!, parseResult.GetValue(roles)!, parseResult.GetValue(ttl) ?? DefaultTtl, "--name"));
            return Task.FromResult(ExitCodes.Success);
        }));
        return command;
    }
}
