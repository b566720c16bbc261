using Broker.Core.Secrets;
using Broker.Server.Tests.Infrastructure;
using Broker.V1;

namespace Broker.Server.Tests.Secrets;

/// <summary>A broker in production mode (real Redis) with the <c>orders-db</c> engine on the fixture's PostgreSQL.</summary>
internal static class SecretScenario
{
    public static readonly IReadOnlyDictionary<string, string?> FastSweep = new Dictionary<string, string?>
    {
        ["Broker:Secrets:SweepInterval"] = "00:00:00.200",
    };

    public static Task<BrokerScenario> StartAsync(RedisFixture redis, PostgresFixture postgres, string prefix, string readerRole = PostgresFixture.Reader, IReadOnlyDictionary<string, string?>? settings = null) =>
        BrokerScenario.StartAsync(redis.Server.Configuration, redisPrefix: prefix, settings: settings ?? FastSweep, policy: (jwks, bundle) => Policy(jwks, bundle, postgres, readerRole));

    public static string Policy(string jwks, string bundle, PostgresFixture postgres, string readerRole) => $"""
        version: 1
        trust:
          spiffe:
            - trust_domain: example.org
              jwt_bundle_file: {jwks}
              x509_bundle_file: {bundle}
              refresh: 30s
        secret_engines:
          - name: orders-db
            type: postgres
            connection: "{postgres.Server.ConnectionFor(PostgresFixture.Database)}"
            admin_password_file: {postgres.Server.AdminPasswordFile}
            connection_limit: 3
        agents:
          - name: planners
            match: spiffe://example.org/agents/*
            phases:
              planning:
                scopes: [repo:read]
                audiences: [{BrokerScenario.ResourceAudience}]
                max_ttl: 10m
                secrets:
                  - engine: orders-db
                    role: {readerRole}
                    max_lease_ttl: 5m
              execution:
                scopes: [repo:read, deploy:staging]
                audiences: [{BrokerScenario.ResourceAudience}]
                max_ttl: 5m
                secrets:
                  - engine: orders-db
                    role: {PostgresFixture.Writer}
                    max_lease_ttl: 5m
                    gated:
                      approvers: [dba]
        """;

    public static IssueSecretRequest SecretRequest(this BrokerScenario scenario, string task, Phase phase = Phase.Planning, string role = PostgresFixture.Reader, string? svid = null, TimeSpan? ttl = null) => new()
    {
        TaskId = task,
        Phase = phase,
        Engine = "orders-db",
        Role = role,
        Attestation = new AttestationProof { JwtSvid = svid ?? scenario.Svid() },
        RequestedTtl = ttl is null ? null : Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(ttl.Value),
    };

    public static DownstreamLogin Login(this IssueSecretResponse response) =>
        new(response.Credential.Database.Host, response.Credential.Database.Port, response.Credential.Database.Database, response.Credential.Database.Username, response.Credential.Database.Password);
}
