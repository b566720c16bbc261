using Broker.Core.Policy;
using Broker.Server.Tests.Infrastructure;
using Broker.V1;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Broker.Console.Tests.Infrastructure;

/// <summary>
/// A --dev broker node (in-memory state, real Kestrel) whose policy gates <c>deploy:prod</c>
/// (one approver) and <c>payments:write</c> (two), with <c>olga</c> owning the agents.
/// </summary>
public sealed class ConsoleWorld : IAsyncDisposable
{
    public const string AgentPath = "/agents/planner";
    public const string Owner = "olga";

    private ConsoleWorld(BrokerScenario scenario) => Scenario = scenario;

    public BrokerScenario Scenario { get; }

    public BrokerTestHost Host => Scenario.Host;

    public string Console => Host.HttpAddress;

    public string Agent => Scenario.Trust.SpiffeId(AgentPath);

    public static async Task<ConsoleWorld> StartAsync(IReadOnlyDictionary<string, string?>? settings = null)
    {
        var scenario = await BrokerScenario.StartAsync(settings: settings);
        var policy = (await File.ReadAllTextAsync(scenario.PolicyPath))
            .Replace("match: spiffe://example.org/agents/*", "match: spiffe://example.org/agents/*\n    owner: " + Owner, StringComparison.Ordinal)
            .Replace("scopes: [repo:read, deploy:staging]", "scopes: [repo:read, deploy:staging, deploy:prod, payments:write]", StringComparison.Ordinal)
            .TrimEnd() + "\n" + """
                    on_unknown_risk: allow
                    gated_scopes:
                      - scopes: [deploy:prod]
                        approvers: [approver]
                        validity: 10m
                      - scopes: [payments:write]
                        approvers: [approver]
                        quorum: 2
            """ + "\n";
        await File.WriteAllTextAsync(scenario.PolicyPath, policy);
        var provider = scenario.Host.Services.GetRequiredService<IPolicyProvider>();
        await Eventually.TrueAsync(() => provider.Current.Agents[0].Owner == Owner, "the node did not reload the policy");
        return new ConsoleWorld(scenario);
    }

    /// <summary>Asks for execution scopes that include a gated one and returns the pending answer.</summary>
    public async Task<PendingApproval> AskAsync(string task, string justification, params string[] scopes)
    {
        var request = Scenario.Request(task: task, phase: Phase.Execution, scopes: scopes);
        request.Justification = justification;
        var response = await Scenario.Client.IssueCredentialAsync(request);
        Assert.Empty(response.AccessToken);
        return response.Pending ?? throw new InvalidOperationException("the request was not held for approval");
    }

    public AsyncServerStreamingCall<ApprovalUpdate> Wait(string approvalId) =>
        Scenario.Client.WaitForApproval(
            new WaitForApprovalRequest { ApprovalId = approvalId, Attestation = new AttestationProof { JwtSvid = Scenario.Svid(AgentPath) } },
            deadline: DateTime.UtcNow + Eventually.Bound);

    public async Task<string[]> AuditAsync() => await Scenario.AuditLinesAsync();

    public async ValueTask DisposeAsync() => await Scenario.DisposeAsync();
}
