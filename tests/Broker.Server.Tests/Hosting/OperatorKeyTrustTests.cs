using System.Text.Json;
using Broker.Cli;
using Broker.Cli.Operators;
using Broker.Client;
using Broker.Server.Tests.Infrastructure;
using Broker.V1;
using Grpc.Core;
using Microsoft.Extensions.Time.Testing;

namespace Broker.Server.Tests.Hosting;

/// <summary>
/// A production node (real Redis, real Kestrel) that trusts operator keys instead of an IdP
/// (<c>Broker:Operators:KeyFile</c>): brokerctl generates the key pair and mints the tokens,
/// brokerctl revokes and approves with them, and every token the key file does not vouch for is
/// refused by the same operator scheme with the same status, reason and audit record as an IdP
/// token would be.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class OperatorKeyTrustTests(RedisFixture redis) : IAsyncLifetime
{
    private const string OperatorIssuer = "test-operators";

    private readonly string _keys = Directory.CreateTempSubdirectory("broker-operator-keys-").FullName;
    private BrokerScenario _broker = null!;

    private string PrivateKey => Path.Combine(_keys, "operator.key.pem");

    private string RsaKey => Path.Combine(_keys, "operator-rsa.key.pem");

    public async Task InitializeAsync()
    {
        var generated = await CtlAsync("operator-key", "generate", "--out", _keys);
        Assert.True(generated.Code == 0, generated.Error);

        // A second, RS256 key in the same file (rotation, or a team that mints with RSA).
        using (var rsa = System.Security.Cryptography.RSA.Create(2048))
        {
            await File.WriteAllTextAsync(RsaKey, rsa.ExportPkcs8PrivateKeyPem());
        }

        var jwksPath = Path.Combine(_keys, "operators.jwks.json");
        var jwks = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(jwksPath))!;
        using (var rsaKey = OperatorSigningKey.Load(RsaKey))
        {
            jwks["keys"]!.AsArray().Add(System.Text.Json.Nodes.JsonNode.Parse(System.Text.Encoding.UTF8.GetString(Broker.Core.Signing.JwksWriter.Write([rsaKey.PublicJwk])))!["keys"]![0]!.DeepClone());
        }

        await File.WriteAllTextAsync(jwksPath, jwks.ToJsonString());
        _broker = await BrokerScenario.StartAsync(
            redis.Server.Configuration,
            redisPrefix: RedisFixture.NewPrefix(),
            settings: new Dictionary<string, string?>
            {
                ["Broker:Operators:Authority"] = "",
                ["Broker:Operators:KeyFile"] = Path.Combine(_keys, "operators.jwks.json"),
                ["Broker:Operators:Issuer"] = OperatorIssuer,
            },
            policy: GatedPolicy,
            operatorTokens: (name, roles) => Mint(PrivateKey, name, roles));
    }

    public async Task DisposeAsync()
    {
        await _broker.DisposeAsync();
        Directory.Delete(_keys, recursive: true);
    }

    [Fact]
    public void Generate_writes_a_private_key_only_its_owner_can_read_and_a_jwks_without_private_members()
    {
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(PrivateKey));
        }

        using var jwks = JsonDocument.Parse(File.ReadAllText(Path.Combine(_keys, "operators.jwks.json")));
        var key = jwks.RootElement.GetProperty("keys")[0];
        Assert.Equal(["alg", "crv", "kid", "kty", "use", "x", "y"], key.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
        Assert.Equal("ES256", key.GetProperty("alg").GetString());
    }

    [Fact]
    public async Task Generate_never_replaces_an_existing_key()
    {
        var before = await File.ReadAllTextAsync(PrivateKey);

        var again = await CtlAsync("operator-key", "generate", "--out", _keys);

        Assert.Equal(ExitCodes.LocalError, again.Code);
        Assert.Contains("exists", again.Error, StringComparison.Ordinal);
        Assert.Equal(before, await File.ReadAllTextAsync(PrivateKey));
    }

    [Fact]
    public async Task A_token_from_operator_token_revokes_through_brokerctl_and_names_the_operator_in_the_audit_record()
    {
        var token = await CtlAsync("operator-token", "--key", PrivateKey, "--issuer", OperatorIssuer, "--name", "alice", "--role", "responder", "--ttl", "10m");
        Assert.True(token.Code == 0, token.Error);

        var revoke = await CtlAsync("revoke", "task", "t-key-1", "--reason", "INC-1", "--broker", _broker.Host.GrpcAddress, "--operator-token", token.Out.Trim());

        Assert.True(revoke.Code == 0, revoke.Error);
        var listed = await _broker.Admin.ListRevocationsAsync(new ListRevocationsRequest(), _broker.As("audra", "auditor"));
        Assert.Contains(listed.Revocations, r => r.Selector.TaskId == "t-key-1" && r.Actor == "operator:alice");
        Assert.Contains(await _broker.AuditLinesAsync(), l => l.Contains("t-key-1", StringComparison.Ordinal) && l.Contains("operator:alice", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_RS256_token_from_an_RSA_key_in_the_key_file_is_accepted()
    {
        var token = await CtlAsync("operator-token", "--key", RsaKey, "--issuer", OperatorIssuer, "--name", "rita", "--role", "responder");
        Assert.True(token.Code == 0, token.Error);
        Assert.Contains("\"RS256\"", System.Text.Encoding.UTF8.GetString(System.Buffers.Text.Base64Url.DecodeFromChars(token.Out.Trim().Split('.')[0])), StringComparison.Ordinal);

        var revoke = await CtlAsync("revoke", "task", "t-rsa-1", "--reason", "INC-2", "--broker", _broker.Host.GrpcAddress, "--operator-token", token.Out.Trim());

        Assert.True(revoke.Code == 0, revoke.Error);
    }

    [Fact]
    public async Task A_token_from_operator_token_approves_through_brokerctl_and_the_agent_gets_its_token()
    {
        var request = _broker.Request(task: "deploy-key-1", phase: Phase.Execution, scopes: "deploy:prod");
        var pending = (await _broker.Client.IssueCredentialAsync(request)).Pending;
        Assert.NotNull(pending);
        var token = await CtlAsync("operator-token", "--key", PrivateKey, "--issuer", OperatorIssuer, "--name", "ann", "--role", "approver");

        var approve = await CtlAsync("approvals", "approve", pending.ApprovalId, "--broker", _broker.Host.GrpcAddress, "--operator-token", token.Out.Trim());

        Assert.True(approve.Code == 0, approve.Error);
        var shown = await new ApprovalAdminService.ApprovalAdminServiceClient(_broker.Channel)
            .GetApprovalAsync(new GetApprovalRequest { ApprovalId = pending.ApprovalId }, _broker.As("ann", "approver"));
        Assert.Equal(ApprovalState.Approved, shown.State);
        Assert.Contains(await _broker.AuditLinesAsync(), l => l.Contains("\"approval.approved\"", StringComparison.Ordinal) && l.Contains("operator:ann", StringComparison.Ordinal));
    }

    public static TheoryData<string, string> Unvouched => new()
    {
        { "another-key", "SecurityTokenSignatureKeyNotFoundException" },
        { "wrong-issuer", "SecurityTokenInvalidIssuerException" },
        { "wrong-audience", "SecurityTokenInvalidAudienceException" },
        { "expired", "SecurityTokenExpiredException" },
    };

    [Theory]
    [MemberData(nameof(Unvouched))]
    public async Task A_token_the_key_file_does_not_vouch_for_is_unauthenticated_and_audited(string kind, string audited)
    {
        var token = kind switch
        {
            "another-key" => Mint(await OtherKeyAsync(), "mallory", ["responder"]),
            "wrong-issuer" => Mint(PrivateKey, "mallory", ["responder"], issuer: "someone-else"),
            "wrong-audience" => Mint(PrivateKey, "mallory", ["responder"], audience: "broker-resource-servers"),
            _ => Mint(PrivateKey, "mallory", ["responder"], now: DateTimeOffset.UtcNow.AddHours(-1)),
        };

        var refusal = await RefusedRevokeAsync(token);

        Assert.Equal(StatusCode.Unauthenticated, refusal.Status);
        Assert.Equal("OPERATOR_UNAUTHENTICATED", refusal.Reason);
        Assert.Contains(await _broker.AuditLinesAsync(), l => l.Contains("\"operator.authentication_failed\"", StringComparison.Ordinal) && l.Contains(audited, StringComparison.Ordinal));
        var listed = await _broker.Admin.ListRevocationsAsync(new ListRevocationsRequest(), _broker.As("audra", "auditor"));
        Assert.DoesNotContain(listed.Revocations, r => r.Selector.TaskId == "t-refused");
    }

    [Fact]
    public async Task A_token_without_the_role_is_permission_denied_naming_the_role_and_audited()
    {
        var refusal = await RefusedRevokeAsync(Mint(PrivateKey, "bob", ["auditor"]));

        Assert.Equal(StatusCode.PermissionDenied, refusal.Status);
        Assert.Equal("OPERATOR_ROLE_MISSING", refusal.Reason);
        Assert.Equal("responder", refusal.Metadata["required_roles"]);
        Assert.Contains(await _broker.AuditLinesAsync(), l => l.Contains("\"operator.authentication_failed\"", StringComparison.Ordinal) && l.Contains("ROLE_MISSING", StringComparison.Ordinal));
    }

    private async Task<BrokerRefusal> RefusedRevokeAsync(string token)
    {
        var request = new RevokeRequest { Reason = "test", Selectors = { new Broker.V1.RevocationSelector { TaskId = "t-refused" } } };
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await _broker.Admin.RevokeAsync(request, new Metadata { { "authorization", "Bearer " + token } }));
        return BrokerRefusal.From(ex);
    }

    private async Task<string> OtherKeyAsync()
    {
        var other = Path.Combine(_keys, "other");
        Assert.Equal(0, (await CtlAsync("operator-key", "generate", "--out", other)).Code);
        return Path.Combine(other, "operator.key.pem");
    }

    /// <summary>brokerctl's own minter (what <c>operator-token</c> runs), with the clock and claims a refusal case needs.</summary>
    private static string Mint(string keyFile, string name, string[] roles, string issuer = OperatorIssuer, string audience = "broker-admin", DateTimeOffset? now = null)
    {
        var key = OperatorSigningKey.Load(keyFile);
        using var minter = new OperatorTokenMinter(key, key.KeyId, issuer, audience, new FakeTimeProvider(now ?? DateTimeOffset.UtcNow));
        return minter.Mint(name, roles, TimeSpan.FromMinutes(10), "--name");
    }

    private static async Task<(int Code, string Out, string Error)> CtlAsync(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = await BrokerCtl.RunAsync(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static string GatedPolicy(string jwks, string bundle) => BrokerScenario.Policy(jwks, bundle)
        .Replace("scopes: [repo:read, deploy:staging]", "scopes: [repo:read, deploy:staging, deploy:prod]", StringComparison.Ordinal)
        .TrimEnd() + "\n" + """
                    on_unknown_risk: allow
                    gated_scopes:
                      - scopes: [deploy:prod]
                        approvers: [approver]
                        validity: 10m
            """;
}
