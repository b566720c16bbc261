using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Broker.V1;
using Grpc.Core;

namespace Broker.Server.Tests.Issuance;

/// <summary>Acceptance scenario 1 over real Kestrel and gRPC: attested agents get tokens that stock validators accept.</summary>
public sealed class IssueCredentialTests : IAsyncLifetime
{
    private BrokerScenario _broker = null!;

    public async Task InitializeAsync() => _broker = await BrokerScenario.StartAsync();

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Fact]
    public async Task Attested_agent_gets_a_planning_token_with_the_documented_claims()
    {
        var response = await _broker.Client.IssueCredentialAsync(_broker.Request(scopes: ["repo:read", "tickets:read"]));

        var header = TokenForger.HeaderOf(response.AccessToken);
        var claims = TokenForger.PayloadOf(response.AccessToken);
        Assert.Equal("at+jwt", (string?)header["typ"]);
        Assert.Equal("ES256", (string?)header["alg"]);
        Assert.False(string.IsNullOrEmpty((string?)header["kid"]));
        Assert.Equal(_broker.Host.Issuer, (string?)claims["iss"]);
        Assert.Equal("spiffe://example.org/agents/planner", (string?)claims["sub"]);
        Assert.Equal(BrokerScenario.ResourceAudience, (string?)claims["aud"]);
        Assert.Equal("repo:read tickets:read", (string?)claims["scope"]);
        Assert.Equal("task-1", (string?)claims["task"]);
        Assert.Equal("planning", (string?)claims["phase"]);
        Assert.Equal(response.TokenId, (string?)claims["jti"]);
        Assert.False(string.IsNullOrEmpty((string?)claims["sid"]));
        Assert.StartsWith("sha256:", (string?)claims["policy_digest"]);
        Assert.Equal(response.PolicyDigest, (string?)claims["policy_digest"]);
        Assert.Equal(600, (long)claims["exp"]! - (long)claims["iat"]!);
        Assert.Equal((long)claims["iat"]!, (long)claims["nbf"]!);
        Assert.Null(claims["cnf"]);
        Assert.Equal("Bearer", response.TokenType);
        Assert.Equal(["repo:read", "tickets:read"], response.GrantedScopes);
    }

    [Fact]
    public async Task Requested_ttl_below_the_phase_maximum_is_granted_exactly()
    {
        var request = _broker.Request();
        request.RequestedTtl = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromMinutes(2));

        var response = await _broker.Client.IssueCredentialAsync(request);

        var claims = TokenForger.PayloadOf(response.AccessToken);
        Assert.Equal(120, (long)claims["exp"]! - (long)claims["iat"]!);
    }

    [Fact]
    public async Task Stock_jwt_bearer_resource_server_accepts_the_token_and_refuses_others()
    {
        await using var api = await ResourceApi.StartAsync(_broker.Host.Issuer, BrokerScenario.ResourceAudience);
        using var http = new HttpClient();
        var token = (await _broker.Client.IssueCredentialAsync(_broker.Request())).AccessToken;

        using var accepted = await SendAsync(http, api, token);
        using var anonymous = await SendAsync(http, api, null);
        using var tampered = await SendAsync(http, api, token[..^4] + (token[^4] == 'A' ? "BBBB" : "AAAA"));
        using var svidInstead = await SendAsync(http, api, _broker.Svid());

        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        var body = JsonDocument.Parse(await accepted.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("spiffe://example.org/agents/planner", body.GetProperty("sub").GetString());
        Assert.Equal("planning", body.GetProperty("phase").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, tampered.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, svidInstead.StatusCode);
    }

    [Fact]
    public async Task Token_verifies_with_raw_ecdsa_against_the_published_jwks()
    {
        // An independent check: no IdentityModel, just the JWKS JSON and the platform's ECDSA.
        var token = (await _broker.Client.IssueCredentialAsync(_broker.Request())).AccessToken;
        using var http = new HttpClient();
        var discovery = JsonDocument.Parse(await http.GetStringAsync(_broker.Host.Issuer + "/.well-known/openid-configuration")).RootElement;
        var jwks = JsonDocument.Parse(await http.GetStringAsync(discovery.GetProperty("jwks_uri").GetString())).RootElement;
        var parts = token.Split('.');
        var kid = (string?)TokenForger.HeaderOf(token)["kid"];
        var jwk = jwks.GetProperty("keys").EnumerateArray().Single(k => k.GetProperty("kid").GetString() == kid);

        using var ecdsa = ECDsa.Create(new ECParameters
        {
            Curve = ECCurve.NamedCurves.nistP256,
            Q = new ECPoint { X = FromBase64Url(jwk.GetProperty("x").GetString()!), Y = FromBase64Url(jwk.GetProperty("y").GetString()!) },
        });
        var signed = Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]);
        var signature = FromBase64Url(parts[2]);

        Assert.Equal(_broker.Host.Issuer, discovery.GetProperty("issuer").GetString());
        Assert.Equal("EC", jwk.GetProperty("kty").GetString());
        Assert.False(jwk.TryGetProperty("d", out _));
        Assert.True(ecdsa.VerifyData(signed, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation));
        signature[0] ^= 1;
        Assert.False(ecdsa.VerifyData(signed, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation));
    }

    [Fact]
    public async Task Issuance_is_in_the_audit_log_without_the_token()
    {
        var response = await _broker.Client.IssueCredentialAsync(_broker.Request());

        var lines = await _broker.AuditLinesAsync();
        var issued = lines.Select(l => JsonDocument.Parse(l).RootElement).Single(e => e.GetProperty("type").GetString() == "credential.issued");
        Assert.Equal(response.TokenId, issued.GetProperty("token_id").GetString());
        Assert.Equal("spiffe://example.org/agents/planner", issued.GetProperty("subject").GetString());
        Assert.Equal(response.PolicyDigest, issued.GetProperty("policy_digest").GetString());
        Assert.Equal(2000, issued.GetProperty("event_id").GetInt32());
        Assert.DoesNotContain(lines, l => l.Contains(response.AccessToken.Split('.')[2], StringComparison.Ordinal));
    }

    [Fact]
    public async Task Unattested_caller_is_unauthenticated_and_audited()
    {
        var request = _broker.Request();
        request.Attestation = null;

        var refusal = await _broker.RefusedAsync(request);

        Assert.Equal(StatusCode.Unauthenticated, refusal.Status);
        Assert.Equal("ATTESTATION_MISSING", refusal.Reason);
        var lines = await _broker.AuditLinesAsync();
        Assert.Contains(lines, l => l.Contains("\"attestation.refused\"", StringComparison.Ordinal) && l.Contains("ATTESTATION_MISSING", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Scope_escalation_is_refused_whole_naming_the_scopes_and_leaves_no_task()
    {
        var refusal = await _broker.RefusedAsync(_broker.Request(task: "escalate", scopes: ["repo:read", "deploy:prod", "admin:*"]));

        Assert.Equal(StatusCode.PermissionDenied, refusal.Status);
        Assert.Equal("SCOPE_NOT_ALLOWED", refusal.Reason);
        Assert.Equal("deploy:prod admin:*", refusal.Metadata["scopes"]);
        await AssertNoTaskAsync("escalate");
    }

    [Fact]
    public async Task Execution_scope_requested_in_planning_is_refused()
    {
        var refusal = await _broker.RefusedAsync(_broker.Request(scopes: ["deploy:staging"]));

        Assert.Equal("SCOPE_NOT_ALLOWED", refusal.Reason);
    }

    [Fact]
    public async Task Audience_outside_policy_is_refused()
    {
        var request = _broker.Request(task: "aud");
        request.Audience = "https://evil.example.org";

        var refusal = await _broker.RefusedAsync(request);

        Assert.Equal(StatusCode.PermissionDenied, refusal.Status);
        Assert.Equal("AUDIENCE_NOT_ALLOWED", refusal.Reason);
        await AssertNoTaskAsync("aud");
    }

    [Fact]
    public async Task Ttl_above_the_phase_maximum_is_refused()
    {
        var request = _broker.Request(task: "long");
        request.RequestedTtl = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromMinutes(11));

        var refusal = await _broker.RefusedAsync(request);

        Assert.Equal(StatusCode.PermissionDenied, refusal.Status);
        Assert.Equal("TTL_EXCEEDS_POLICY", refusal.Reason);
        Assert.Equal("600", refusal.Metadata["max_ttl_seconds"]);
        await AssertNoTaskAsync("long");
    }

    [Fact]
    public async Task Workload_outside_every_rule_is_refused()
    {
        var refusal = await _broker.RefusedAsync(_broker.Request(svid: _broker.Svid("/billing/robot"), task: "other"));

        Assert.Equal(StatusCode.PermissionDenied, refusal.Status);
        Assert.Equal("AGENT_NOT_ALLOWED", refusal.Reason);
    }

    [Fact]
    public async Task Phase_without_a_rule_is_refused()
    {
        var refusal = await _broker.RefusedAsync(_broker.Request(task: "rec", phase: Phase.Recovery));

        Assert.Equal("PHASE_NOT_ALLOWED", refusal.Reason);
    }

    [Theory]
    [InlineData(Phase.Unspecified)]
    [InlineData((Phase)99)]
    public async Task Unknown_or_empty_phase_is_invalid(Phase phase)
    {
        var refusal = await _broker.RefusedAsync(_broker.Request(task: "phase", phase: phase));

        Assert.Equal(StatusCode.InvalidArgument, refusal.Status);
        Assert.Equal("PHASE_INVALID", refusal.Reason);
        await AssertNoTaskAsync("phase");
    }

    [Theory]
    [InlineData("")]
    [InlineData("tab\there")]
    [InlineData("new\nline")]
    [InlineData("nul\0byte")]
    [InlineData("esc\u001b[31m")]
    [InlineData("zero\u200Bwidth")]
    public async Task Malformed_task_id_is_invalid(string taskId)
    {
        var refusal = await _broker.RefusedAsync(_broker.Request(task: taskId));

        Assert.Equal(StatusCode.InvalidArgument, refusal.Status);
        Assert.Equal("TASK_ID_INVALID", refusal.Reason);
    }

    [Fact]
    public async Task Task_id_over_128_characters_is_invalid_and_128_is_accepted()
    {
        var refusal = await _broker.RefusedAsync(_broker.Request(task: new string('t', 129)));
        var accepted = await _broker.Client.IssueCredentialAsync(_broker.Request(task: new string('t', 128)));

        Assert.Equal("TASK_ID_INVALID", refusal.Reason);
        Assert.False(string.IsNullOrEmpty(accepted.TokenId));
    }

    [Theory]
    [InlineData("has space")]
    [InlineData("quote\"d")]
    [InlineData("")]
    public async Task Malformed_scope_is_invalid(string scope)
    {
        var refusal = await _broker.RefusedAsync(_broker.Request(scopes: [scope]));

        Assert.Equal(StatusCode.InvalidArgument, refusal.Status);
        Assert.Equal("SCOPES_INVALID", refusal.Reason);
    }

    [Fact]
    public async Task Duplicate_scopes_are_collapsed()
    {
        var response = await _broker.Client.IssueCredentialAsync(_broker.Request(scopes: ["repo:read", "repo:read"]));

        Assert.Equal(["repo:read"], response.GrantedScopes);
    }

    [Fact]
    public async Task Oversized_request_is_refused_by_the_transport()
    {
        var request = _broker.Request();
        request.Justification = new string('j', 70_000);

        var ex = await Assert.ThrowsAsync<RpcException>(async () => await _broker.Client.IssueCredentialAsync(request));

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
    }

    [Fact]
    public async Task Overlong_justification_is_invalid()
    {
        var request = _broker.Request();
        request.Justification = new string('j', 513);

        var refusal = await _broker.RefusedAsync(request);

        Assert.Equal("TEXT_TOO_LONG", refusal.Reason);
    }

    [Fact]
    public async Task Proof_of_possession_key_is_bound_as_cnf_jkt()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var p = key.ExportParameters(false);
        var jwk = $$"""{"kty":"EC","crv":"P-256","x":"{{ToBase64Url(p.Q.X!)}}","y":"{{ToBase64Url(p.Q.Y!)}}"}""";
        var expected = ToBase64Url(SHA256.HashData(Encoding.UTF8.GetBytes(
            $$"""{"crv":"P-256","kty":"EC","x":"{{ToBase64Url(p.Q.X!)}}","y":"{{ToBase64Url(p.Q.Y!)}}"}""")));
        var request = _broker.Request();
        request.PopPublicKeyJwk = jwk;

        var response = await _broker.Client.IssueCredentialAsync(request);

        var cnf = TokenForger.PayloadOf(response.AccessToken)["cnf"]!.AsObject();
        Assert.Equal(expected, (string?)cnf["jkt"]);
        Assert.Equal("DPoP", response.TokenType);
    }

    [Fact]
    public async Task Private_key_offered_as_pop_key_is_refused()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var p = key.ExportParameters(true);
        var request = _broker.Request(task: "pop");
        request.PopPublicKeyJwk = $$"""{"kty":"EC","crv":"P-256","x":"{{ToBase64Url(p.Q.X!)}}","y":"{{ToBase64Url(p.Q.Y!)}}","d":"{{ToBase64Url(p.D!)}}"}""";

        var refusal = await _broker.RefusedAsync(request);

        Assert.Equal("POP_KEY_INVALID", refusal.Reason);
        await AssertNoTaskAsync("pop");
    }

    [Fact]
    public async Task Ended_task_gets_nothing_more()
    {
        await _broker.Client.IssueCredentialAsync(_broker.Request(task: "short-lived"));

        var ended = await _broker.Client.EndTaskAsync(new Broker.V1.EndTaskRequest { TaskId = "short-lived", Attestation = new AttestationProof { JwtSvid = _broker.Svid() }, Reason = "done" });
        var again = await _broker.Client.EndTaskAsync(new Broker.V1.EndTaskRequest { TaskId = "short-lived", Attestation = new AttestationProof { JwtSvid = _broker.Svid() } });
        var refusal = await _broker.RefusedAsync(_broker.Request(task: "short-lived"));

        Assert.Equal(ended.EndedAt, again.EndedAt);
        Assert.Equal(StatusCode.FailedPrecondition, refusal.Status);
        Assert.Equal("TASK_ENDED", refusal.Reason);
        Assert.Contains(await _broker.AuditLinesAsync(), l => l.Contains("\"task.ended\"", StringComparison.Ordinal));
    }

    /// <summary>EndTask is idempotent; repeating it must not grow the revocation log by one entry per call.</summary>
    [Fact]
    public async Task Ending_a_task_again_appends_no_new_revocation()
    {
        await _broker.Client.IssueCredentialAsync(_broker.Request(task: "ended-often"));

        for (var i = 0; i < 5; i++)
        {
            await _broker.Client.EndTaskAsync(new Broker.V1.EndTaskRequest { TaskId = "ended-often", Attestation = new AttestationProof { JwtSvid = _broker.Svid() } });
        }

        var listed = await _broker.Admin.ListRevocationsAsync(new ListRevocationsRequest(), _broker.As("carol", "auditor"));
        Assert.Single(listed.Revocations, r => r.Selector.TaskId == "ended-often");
    }

    [Fact]
    public async Task Another_workload_can_neither_use_nor_end_a_claimed_task()
    {
        await _broker.Client.IssueCredentialAsync(_broker.Request(task: "mine"));
        var other = _broker.Svid("/agents/other");

        var refusal = await _broker.RefusedAsync(_broker.Request(svid: other, task: "mine"));
        var endRefusal = await Assert.ThrowsAsync<RpcException>(async () =>
            await _broker.Client.EndTaskAsync(new Broker.V1.EndTaskRequest { TaskId = "mine", Attestation = new AttestationProof { JwtSvid = other } }));

        Assert.Equal("TASK_NOT_OWNED", refusal.Reason);
        Assert.Equal(StatusCode.PermissionDenied, endRefusal.StatusCode);
        await _broker.Client.IssueCredentialAsync(_broker.Request(task: "mine"));
    }

    [Fact]
    public async Task Ending_an_unknown_task_is_not_found()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await _broker.Client.EndTaskAsync(new Broker.V1.EndTaskRequest { TaskId = "never", Attestation = new AttestationProof { JwtSvid = _broker.Svid() } }));

        Assert.Equal(StatusCode.NotFound, ex.StatusCode);
    }

    [Fact]
    public async Task Health_and_reflection_services_answer()
    {
        var health = new Grpc.Health.V1.Health.HealthClient(_broker.Channel);
        var reflection = new Grpc.Reflection.V1Alpha.ServerReflection.ServerReflectionClient(_broker.Channel);

        var status = await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest());
        using var call = reflection.ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new Grpc.Reflection.V1Alpha.ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext(default));
        var services = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();

        Assert.Equal(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving, status.Status);
        Assert.Contains("broker.v1.CredentialService", services);
    }

    private async Task AssertNoTaskAsync(string taskId)
    {
        var store = (Broker.Core.State.ICredentialStore)_broker.Host.Services.GetService(typeof(Broker.Core.State.ICredentialStore))!;
        Assert.Null(await store.GetTaskAsync(taskId, default));
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient http, ResourceApi api, string? token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, api.Address + "/whoami");
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        return await http.SendAsync(request);
    }

    private static byte[] FromBase64Url(string text) => System.Buffers.Text.Base64Url.DecodeFromChars(text);

    private static string ToBase64Url(byte[] bytes) => System.Buffers.Text.Base64Url.EncodeToString(bytes);
}
