namespace Broker.Server.Hosting;

/// <summary>
/// Start-up checks for how operators are trusted (BRK1163-1168): exactly one of an OIDC
/// authority or a key file; with a key file, the issuer its tokens carry and keys the broker can
/// use; and none at all where the installation requires its IdP. Checked in --dev too, whenever
/// a key file is configured.
/// </summary>
public static class OperatorTrust
{
    public static IEnumerable<string> Problems(BrokerOptions options)
    {
        var operators = options.Operators;
        var keyFile = !string.IsNullOrWhiteSpace(operators.KeyFile);
        if (keyFile && !string.IsNullOrWhiteSpace(operators.Authority))
        {
            yield return "BRK1163: set Broker:Operators:Authority or Broker:Operators:KeyFile, not both: operators are trusted one way.";
        }

        if (keyFile && operators.RequireOidc)
        {
            yield return "BRK1168: Broker:Operators:RequireOidc is true, so operators must come from the OIDC IdP in Broker:Operators:Authority; remove Broker:Operators:KeyFile.";
        }

        if (!keyFile)
        {
            if (!string.IsNullOrWhiteSpace(operators.Issuer))
            {
                yield return "BRK1167: Broker:Operators:Issuer is only used with Broker:Operators:KeyFile (with an Authority the IdP's discovery document names the issuer).";
            }

            yield break;
        }

        if (string.IsNullOrWhiteSpace(operators.Issuer))
        {
            yield return "BRK1167: Broker:Operators:Issuer is required with Broker:Operators:KeyFile: the iss of the operator tokens those keys sign.";
        }
        else if (string.Equals(operators.Issuer.TrimEnd('/'), options.Issuer.TrimEnd('/'), StringComparison.OrdinalIgnoreCase))
        {
            yield return $"BRK1167: Broker:Operators:Issuer '{operators.Issuer}' must not be Broker's own issuer: agent credentials must never authorize admin calls.";
        }

        OperatorKeyFile.Read(operators.KeyFile, out var problems);
        foreach (var problem in problems)
        {
            yield return problem;
        }
    }
}
