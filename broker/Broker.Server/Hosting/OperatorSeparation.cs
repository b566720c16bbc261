using Broker.Core.Policy;

namespace Broker.Server.Hosting;

/// <summary>
/// Keeps operator credentials and agent credentials apart: a token minted for agents (or an
/// attestation proof) must never open the admin API, and an operator token must never attest.
/// </summary>
public static class OperatorSeparation
{
    /// <summary>Checks that need only the settings.</summary>
    public static IEnumerable<string> Problems(BrokerOptions options)
    {
        var agentAudience = string.IsNullOrEmpty(options.Audience) ? options.Issuer : options.Audience;
        if (!string.IsNullOrEmpty(agentAudience) && string.Equals(options.Operators.Audience.TrimEnd('/'), agentAudience.TrimEnd('/'), StringComparison.OrdinalIgnoreCase))
        {
            yield return $"BRK1052: Broker:Operators:Audience ('{options.Operators.Audience}') must differ from Broker:Audience, the audience agents' attestation proofs carry: a proof for the broker would pass as an operator token.";
        }
    }

    /// <summary>Checks against the policy in force: the operator IdP must not also vouch for workloads.</summary>
    public static IEnumerable<string> Problems(BrokerOptions options, BrokerPolicy policy)
    {
        if (!string.IsNullOrWhiteSpace(options.Operators.KeyFile) && !string.IsNullOrWhiteSpace(options.Operators.Issuer))
        {
            var keyIssuer = options.Operators.Issuer.TrimEnd('/');
            foreach (var issuer in policy.Trust.OidcIssuers.Where(i => string.Equals(i.Issuer.TrimEnd('/'), keyIssuer, StringComparison.OrdinalIgnoreCase)))
            {
                yield return $"BRK1053: Broker:Operators:Issuer '{options.Operators.Issuer}' is also an attestation issuer in the policy (trust.oidc issuer '{issuer.Issuer}'): one issuer's tokens must not both attest workloads and authorize operators.";
            }
        }

        if (options.Dev || string.IsNullOrWhiteSpace(options.Operators.Authority))
        {
            yield break;
        }

        var authority = options.Operators.Authority.TrimEnd('/');
        foreach (var issuer in policy.Trust.OidcIssuers.Where(i => string.Equals(i.Issuer.TrimEnd('/'), authority, StringComparison.OrdinalIgnoreCase)))
        {
            yield return $"BRK1053: Broker:Operators:Authority '{options.Operators.Authority}' is also an attestation issuer in the policy (trust.oidc issuer '{issuer.Issuer}'): one IdP's tokens must not both attest workloads and authorize operators.";
        }
    }
}
