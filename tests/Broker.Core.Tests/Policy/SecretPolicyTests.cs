using Broker.Core.Policy;

namespace Broker.Core.Tests.Policy;

public sealed class SecretPolicyTests : IDisposable
{
    private readonly PolicyTestDirectory _dir = new();

    public SecretPolicyTests()
    {
        _dir.Touch("bundles/example.org.jwks");
        _dir.Touch("secrets/orders-db.pw");
    }

    public void Dispose() => _dir.Dispose();

    // Line 1 is "version: 1"; the engine's connection is on line 9, the planning secrets list on line 19.
    private static string Policy(string connection = "Host=127.0.0.1;Port=5432;Database=orders;Username=broker_admin", string credential = "admin_password_file: secrets/orders-db.pw", string planning = "", string execution = "") => $"""
        version: 1
        trust:
          spiffe:
            - trust_domain: example.org
              jwt_bundle_file: bundles/example.org.jwks
        secret_engines:
          - name: orders-db
            type: postgres
            connection: "{connection}"
            {credential}
        agents:
          - name: ops
            match: spiffe://example.org/agents/*
            phases:
              planning:
                scopes: [repo:read]
                audiences: [https://api.example.org]
                max_ttl: 10m
                secrets:
        {planning}
              execution:
                scopes: [repo:read]
                audiences: [https://api.example.org]
                max_ttl: 5m
                secrets:
        {execution}
        """;

    private const string Reader = """
                  - engine: orders-db
                    role: orders_reader
                    max_lease_ttl: 5m
        """;

    private const string Writer = """
                  - engine: orders-db
                    role: orders_writer
                    max_lease_ttl: 5m
                    gated:
                      approvers: [dba]
                      require_justification: true
        """;

    [Fact]
    public void Engines_and_phase_grants_load_with_gates_as_approval_scopes()
    {
        var policy = PolicyAssert.Loaded(_dir.Load(Policy(planning: Reader, execution: Writer)));

        var engine = Assert.Single(policy.SecretEngines);
        Assert.Equal("postgres", engine.Type);
        Assert.EndsWith("secrets/orders-db.pw", engine.AdminPasswordFile);
        Assert.Equal(PolicyLoader.DefaultConnectionLimit, engine.ConnectionLimit);
        var reader = Assert.Single(policy.Agents[0].Phases[TaskPhase.Planning].Secrets!);
        Assert.Equal(("orders-db", "orders_reader", TimeSpan.FromMinutes(5)), (reader.Engine, reader.Role, reader.MaxLeaseTtl));
        Assert.Null(reader.Gate);
        var writer = Assert.Single(policy.Agents[0].Phases[TaskPhase.Execution].Secrets!);
        Assert.NotNull(writer.Gate);
        Assert.Contains("dba", writer.Gate.Approvers);
        Assert.True(writer.Gate.RequireJustification);
        Assert.Equal(["secret:orders-db#orders_writer"], writer.Gate.Scopes);
    }

    [Fact]
    public void A_password_inline_in_the_connection_is_refused_without_echoing_it()
    {
        var result = _dir.Load(Policy(connection: "Host=db;Database=orders;Username=admin;Password=hunter2", planning: Reader, execution: Reader));

        var error = PolicyAssert.SingleError(result, 9, "must not carry a password");
        Assert.DoesNotContain("hunter2", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void An_engine_needs_exactly_one_credential_reference()
    {
        PolicyAssert.SingleError(_dir.Load(Policy(credential: "connection_limit: 3", planning: Reader, execution: Reader)), 7, "exactly one of admin_password_file or admin_password_env");
    }

    [Fact]
    public void A_lease_longer_than_the_phase_token_ttl_is_refused_with_its_line()
    {
        var tooLong = Reader.Replace("max_lease_ttl: 5m", "max_lease_ttl: 6m", StringComparison.Ordinal);

        PolicyAssert.SingleError(_dir.Load(Policy(planning: Reader, execution: tooLong)), 30, "longer than the phase's max_ttl of 5m");
    }

    [Fact]
    public void A_grant_naming_an_undeclared_engine_is_refused_with_its_line()
    {
        var unknown = Reader.Replace("engine: orders-db", "engine: billing-db", StringComparison.Ordinal);

        PolicyAssert.SingleError(_dir.Load(Policy(planning: unknown, execution: Reader)), 20, "'billing-db' is not declared under secret_engines (declared: orders-db)");
    }

    [Fact]
    public void A_role_that_is_not_a_plain_identifier_is_refused()
    {
        var quoted = Reader.Replace("role: orders_reader", "role: \"x; DROP ROLE admin\"", StringComparison.Ordinal);

        PolicyAssert.SingleError(_dir.Load(Policy(planning: quoted, execution: Reader)), 21, "is not a role name this broker grants");
    }

    [Fact]
    public void An_unknown_engine_type_is_refused()
    {
        var yaml = Policy(planning: Reader, execution: Reader).Replace("type: postgres", "type: mysql", StringComparison.Ordinal);

        PolicyAssert.HasError(_dir.Load(yaml), 8, "unknown engine type 'mysql'");
    }
}
