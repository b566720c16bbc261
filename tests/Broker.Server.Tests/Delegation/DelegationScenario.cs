using System.Buffers.Text;
using System.Text.Json;
using Broker.Server.Tests.Infrastructure;
using Broker.V1;
using Grpc.Core;

namespace Broker.Server.Tests.Delegation;

/// <summary>
/// The policy delegation tests act under: planners may delegate to sub-agents up to depth 2,
/// sub-agents among themselves up to depth 2, "shallow" agents only one hop, and "loners" not
/// at all; "gated" sub-agents wait for approval for tickets:read in planning. Every rule also allows its own agents the usual planning and execution scopes.
/// </summary>
internal static class DelegationScenario
{
    public const string Planner = "/agents/planner";
    public const string SubA = "/sub/a";
    public const string SubB = "/sub/b";
    public const string SubC = "/sub/c";

    public static string Policy(string jwksPath, string x509BundlePath) => $"""
        version: 1
        trust:
          spiffe:
            - trust_domain: example.org
              jwt_bundle_file: {jwksPath}
              x509_bundle_file: {x509BundlePath}
              refresh: 30s
        agents:

        """
        + Rule("planners", "spiffe://example.org/agents/*", "[spiffe://example.org/sub/*, spiffe://example.org/gated/*]", 2)
        + Rule("subagents", "spiffe://example.org/sub/*", "[spiffe://example.org/sub/*]", 2)
        + Rule("shallow", "spiffe://example.org/shallow/*", "[spiffe://example.org/sub/*]", 1)
        + Rule("loners", "spiffe://example.org/loners/*", null, 0)
        + Rule("gated", "spiffe://example.org/gated/*", null, 0).Replace(
            "        max_ttl: 10m\n",
            "        max_ttl: 10m\n        gated_scopes:\n          - scopes: [tickets:read]\n            approvers: [approver]\n",
            StringComparison.Ordinal);

    private static string Rule(string name, string match, string? delegateTo, int depth) =>
        $"  - name: {name}\n"
        + $"    match: {match}\n"
        + (delegateTo is null ? "" : $"    delegate_to: {delegateTo}\n    max_delegation_depth: {depth}\n")
        + "    phases:\n"
        + "      planning:\n"
        + "        scopes: [repo:read, tickets:read]\n"
        + $"        audiences: [{BrokerScenario.ResourceAudience}]\n"
        + "        max_ttl: 10m\n"
        + "      execution:\n"
        + "        scopes: [repo:read, deploy:staging]\n"
        + $"        audiences: [{BrokerScenario.ResourceAudience}]\n"
        + "        max_ttl: 5m\n";

    public static ExchangeCredentialRequest Exchange(BrokerScenario broker, string subjectToken, string actor, Phase phase = Phase.Unspecified, params string[] scopes)
    {
        var request = new ExchangeCredentialRequest
        {
            SubjectToken = subjectToken,
            ActorAttestation = new AttestationProof { JwtSvid = broker.Svid(actor) },
            Phase = phase,
        };
        request.Scopes.AddRange(scopes);
        return request;
    }

    public static async Task<Broker.Client.BrokerRefusal> RefusedAsync(CredentialService.CredentialServiceClient client, ExchangeCredentialRequest request)
    {
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await client.ExchangeCredentialAsync(request));
        return Broker.Client.BrokerRefusal.From(ex);
    }

    /// <summary>The JWT's payload, for reading its claims as a resource server would.</summary>
    public static JsonElement Payload(string jwt) =>
        JsonDocument.Parse(Base64Url.DecodeFromChars(jwt.Split('.')[1])).RootElement.Clone();

    /// <summary>The <c>act.sub</c> chain, outermost (current actor) first.</summary>
    public static List<string> Actors(JsonElement payload)
    {
        var actors = new List<string>();
        var node = payload;
        while (node.TryGetProperty("act", out var act))
        {
            actors.Add(act.GetProperty("sub").GetString()!);
            node = act;
        }

        return actors;
    }
}
