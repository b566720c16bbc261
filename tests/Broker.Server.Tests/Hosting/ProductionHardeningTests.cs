using Broker.Core.Audit;
using Broker.Core.Policy;
using Broker.Server.Hosting;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Grpc.Core;
using Grpc.Reflection.V1Alpha;
using Microsoft.Extensions.DependencyInjection;

namespace Broker.Server.Tests.Hosting;

/// <summary>What production start-up refuses or turns off that --dev allows.</summary>
[Collection(RedisCollection.Name)]
public sealed class ProductionHardeningTests(RedisFixture redis)
{
    [Fact]
    public async Task Grpc_reflection_is_off_in_production_unless_turned_on()
    {
        await using (var production = await BrokerScenario.StartAsync(redis.Server.Configuration, redisPrefix: RedisFixture.NewPrefix()))
        {
            var refused = await Assert.ThrowsAsync<RpcException>(() => ListServicesAsync(production));
            Assert.Equal(StatusCode.Unimplemented, refused.StatusCode);
        }

        await using var turnedOn = await BrokerScenario.StartAsync(redis.Server.Configuration, redisPrefix: RedisFixture.NewPrefix(), settings: new Dictionary<string, string?> { ["Broker:GrpcReflection"] = "true" });
        Assert.Contains("broker.v1.CredentialService", await ListServicesAsync(turnedOn));
    }

    [Fact]
    public async Task Grpc_reflection_is_on_in_dev()
    {
        await using var dev = await BrokerScenario.StartAsync();

        Assert.Contains("broker.v1.CredentialService", await ListServicesAsync(dev));
    }

    [Fact]
    public async Task Start_up_refuses_an_operator_authority_that_also_attests_workloads()
    {
        using var trust = new TestTrustDomain("example.org");
        var policyPath = await WriteOidcPolicyAsync(trust, "https://idp.example.org");

        var audit = Path.Combine(trust.Directory, "audit");
        var refused = await Assert.ThrowsAsync<PolicyLoadException>(() => BrokerTestHost.StartAsync(new BrokerTestHostOptions
        {
            PolicyPath = policyPath,
            RedisConfiguration = redis.Server.Configuration,
            RedisKeyPrefix = RedisFixture.NewPrefix(),
            OperatorAuthority = "https://idp.example.org/",
            AuditPath = audit,
        }));

        var problem = Assert.Single(refused.Errors).Message;
        Assert.StartsWith("BRK1053", problem, StringComparison.Ordinal);
        Assert.Contains("Broker:Operators:Authority", problem, StringComparison.Ordinal);
        var recorded = Assert.Single(AuditReader.ReadAll([audit]), r => r.Event.EventId == AuditEventTypes.PolicyRefused.Id);
        Assert.Contains("BRK1053", recorded.Event.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_policy_edit_that_makes_the_operator_authority_attest_workloads_is_refused_and_the_policy_in_force_stays()
    {
        using var trust = new TestTrustDomain("example.org");
        var policyPath = await WriteOidcPolicyAsync(trust, "https://ci.example.org");
        await using var host = await BrokerTestHost.StartAsync(new BrokerTestHostOptions
        {
            PolicyPath = policyPath,
            RedisConfiguration = redis.Server.Configuration,
            RedisKeyPrefix = RedisFixture.NewPrefix(),
            OperatorAuthority = "https://idp.example.org/",
        });
        var policy = host.Services.GetRequiredService<FilePolicyProvider>();
        var inForce = policy.Current.Digest;

        // The running node's own watcher finds the edit, as it would in production.
        await WriteOidcPolicyAsync(trust, "https://idp.example.org");
        List<AuditLine> Refused() => [.. AuditReader.ReadAll([host.AuditPath]).Where(r => r.Event.EventId == AuditEventTypes.PolicyRefused.Id)];
        await Poll.UntilAsync(() => Refused().Count > 0, "the edit is refused and audited");

        Assert.Equal(inForce, policy.Current.Digest);
        Assert.Contains("BRK1053", Assert.Single(Refused()).Event.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("https://broker.example.org", "", "https://broker.example.org/")]
    [InlineData("https://broker.example.org", "spiffe://example.org/broker", "spiffe://example.org/broker")]
    public void Start_up_refuses_an_operator_audience_equal_to_the_agent_audience(string issuer, string audience, string operatorAudience)
    {
        var options = new BrokerOptions { Issuer = issuer, Audience = audience, Operators = { Audience = operatorAudience } };

        Assert.Contains(StartupValidation.Problems(options), p => p.StartsWith("BRK1052", StringComparison.Ordinal) && p.Contains("Broker:Operators:Audience", StringComparison.Ordinal));
        Assert.DoesNotContain(StartupValidation.Problems(new BrokerOptions { Issuer = issuer, Audience = audience }), p => p.StartsWith("BRK1052", StringComparison.Ordinal));
    }

    /// <summary>A policy whose only trust source is one OIDC issuer; returns its path.</summary>
    private static async Task<string> WriteOidcPolicyAsync(TestTrustDomain trust, string oidcIssuer)
    {
        var policyPath = Path.Combine(trust.Directory, "policy.yaml");
        await File.WriteAllTextAsync(policyPath, $"""
            version: 1
            trust:
              oidc:
                - issuer: {oidcIssuer}
                  jwks_file: {trust.WriteJwksFile(use: null)}
                  workload_id_prefix: "idp:"
            agents:
              - name: a
                match: idp:*
                phases:
                  planning: {"{"} scopes: [s], audiences: [https://api], max_ttl: 1m {"}"}
            """);
        return policyPath;
    }

    private static async Task<List<string>> ListServicesAsync(BrokerScenario broker)
    {
        var client = new ServerReflection.ServerReflectionClient(broker.Channel);
        using var call = client.ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.CompleteAsync();
        var names = new List<string>();
        await foreach (var response in call.ResponseStream.ReadAllAsync())
        {
            names.AddRange(response.ListServicesResponse.Service.Select(s => s.Name));
        }

        return names;
    }
}
