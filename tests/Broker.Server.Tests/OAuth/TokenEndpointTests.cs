using System.Net;
using System.Text.Json;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Broker.V1;

namespace Broker.Server.Tests.OAuth;

/// <summary>POST /oauth2/token over real Kestrel with a plain HttpClient: the same decisions and audit as IssueCredential.</summary>
public sealed class TokenEndpointTests : IAsyncLifetime
{
    private OAuthScenario _oauth = null!;

    private BrokerScenario Broker => _oauth.Broker;

    public async Task InitializeAsync() => _oauth = await OAuthScenario.StartAsync(settings: new Dictionary<string, string?> { ["Broker:OAuth:PollInterval"] = "00:00:01" });

    public async Task DisposeAsync() => await _oauth.DisposeAsync();

    [Fact]
    public async Task Token_exchange_with_a_jwt_svid_answers_rfc_8693_fields_the_task_and_phase_never_cached()
    {
        var form = _oauth.Exchange(scope: "repo:read tickets:read");
        form["authorization_details"] = OAuthScenario.Details("task-1", "planning", "triage issue 7");

        var answer = await _oauth.TokenAsync(form);

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal("no-store", answer.CacheControl);
        Assert.Equal("application/json", answer.ContentType);
        Assert.Equal("urn:ietf:params:oauth:token-type:access_token", answer["issued_token_type"]);
        Assert.Equal("Bearer", answer["token_type"]);
        Assert.Equal("repo:read tickets:read", answer["scope"]);
        Assert.Equal("task-1", answer["task_id"]);
        Assert.Equal("planning", answer["phase"]);
        Assert.InRange(answer.Body.GetProperty("expires_in").GetInt64(), 590, 600);
        var details = Assert.Single(answer.Body.GetProperty("authorization_details").EnumerateArray());
        Assert.Equal("agent_task", details.GetProperty("type").GetString());
        Assert.Equal("task-1", details.GetProperty("task_id").GetString());
        Assert.Equal("triage issue 7", details.GetProperty("justification").GetString());
        var claims = TokenForger.PayloadOf(answer["access_token"]!);
        Assert.Equal("spiffe://example.org/agents/planner", (string?)claims["sub"]);
        Assert.Equal(BrokerScenario.ResourceAudience, (string?)claims["aud"]);
        Assert.Equal("task-1", (string?)claims["task"]);
        Assert.Equal(answer["token_id"], (string?)claims["jti"]);
    }

    [Fact]
    public async Task Jwt_bearer_with_the_svid_as_assertion_gets_a_token()
    {
        var answer = await _oauth.TokenAsync(new Dictionary<string, string?>
        {
            ["grant_type"] = OAuthScenario.JwtBearer,
            ["assertion"] = Broker.Svid(),
            ["audience"] = BrokerScenario.ResourceAudience,
            ["scope"] = "repo:read",
            ["authorization_details"] = OAuthScenario.Details("task-jb", "execution"),
        });

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal("execution", answer["phase"]);
        Assert.Equal("execution", (string?)TokenForger.PayloadOf(answer["access_token"]!)["phase"]);
    }

    [Fact]
    public async Task A_request_without_task_details_gets_a_new_broker_chosen_task_in_the_default_phase()
    {
        var form = _oauth.Exchange();
        form.Remove("authorization_details");

        var first = await _oauth.TokenAsync(form);
        form["subject_token"] = Broker.Svid();
        var second = await _oauth.TokenAsync(form);

        Assert.Equal(HttpStatusCode.OK, first.Status);
        Assert.Equal("planning", first["phase"]);
        Assert.StartsWith("task_", first["task_id"]);
        Assert.NotEqual(first["task_id"], second["task_id"]);
        Assert.Equal(first["task_id"], (string?)TokenForger.PayloadOf(first["access_token"]!)["task"]);
    }

    [Fact]
    public async Task Without_a_default_phase_such_a_request_is_invalid_naming_what_is_missing_and_audited()
    {
        var form = _oauth.Exchange(svid: Broker.Svid("/strict/bot"));
        form.Remove("authorization_details");

        var answer = await _oauth.TokenAsync(form);

        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal("invalid_request", answer.Error);
        Assert.Equal("PHASE_REQUIRED", answer.Reason);
        Assert.Contains("authorization_details", answer["error_description"]);
        Assert.Contains("default_phase", answer["error_description"]);
        Assert.StartsWith("PHASE_REQUIRED: ", answer["error_description"]);
        Assert.Contains(await Broker.AuditLinesAsync(), l => l.Contains("\"credential.refused\"", StringComparison.Ordinal) && l.Contains("PHASE_REQUIRED", StringComparison.Ordinal));
    }

    public static TheoryData<string, string, string> Refusals() => new()
    {
        { "no-proof", "invalid_request", "ATTESTATION_MISSING" },
        { "expired-proof", "invalid_grant", "ATTESTATION_EXPIRED" },
        { "wrong-audience-proof", "invalid_grant", "ATTESTATION_AUDIENCE_MISMATCH" },
        { "alg-none-proof", "invalid_grant", "ATTESTATION_ALG_NOT_ALLOWED" },
        { "zero-signature-proof", "invalid_grant", "ATTESTATION_SIGNATURE_INVALID" },
        { "oversize-proof", "invalid_request", "ATTESTATION_TOO_LARGE" },
        { "foreign-trust-domain", "invalid_grant", "ATTESTATION_TRUST_DOMAIN_UNKNOWN" },
        { "scope-escalation", "invalid_scope", "SCOPE_NOT_ALLOWED" },
        { "no-scope", "invalid_scope", "SCOPES_INVALID" },
        { "malformed-scope", "invalid_scope", "SCOPES_INVALID" },
        { "audience-outside-policy", "invalid_target", "AUDIENCE_NOT_ALLOWED" },
        { "no-resource", "invalid_target", "AUDIENCE_INVALID" },
        { "two-resources", "invalid_target", "OAUTH_TARGET_INVALID" },
        { "unknown-phase", "invalid_request", "PHASE_INVALID" },
        { "phase-without-rule", "unauthorized_client", "PHASE_NOT_ALLOWED" },
        { "workload-outside-rules", "unauthorized_client", "AGENT_NOT_ALLOWED" },
        { "malformed-task-id", "invalid_request", "TASK_ID_INVALID" },
        { "long-task-id", "invalid_request", "TASK_ID_INVALID" },
        { "long-justification", "invalid_request", "TEXT_TOO_LONG" },
        { "unknown-grant", "unsupported_grant_type", "OAUTH_GRANT_TYPE_UNSUPPORTED" },
        { "no-grant", "invalid_request", "OAUTH_REQUEST_MALFORMED" },
        { "repeated-grant", "invalid_request", "OAUTH_REQUEST_MALFORMED" },
        { "unknown-subject-token-type", "invalid_request", "OAUTH_TOKEN_TYPE_UNSUPPORTED" },
        { "missing-subject-token-type", "invalid_request", "OAUTH_REQUEST_MALFORMED" },
        { "refresh-token-requested", "invalid_request", "OAUTH_TOKEN_TYPE_UNSUPPORTED" },
        { "actor-token", "invalid_request", "OAUTH_ACTOR_TOKEN_UNSUPPORTED" },
        { "details-other-type", "invalid_authorization_details", "OAUTH_AUTHORIZATION_DETAILS_INVALID" },
        { "details-unknown-member", "invalid_authorization_details", "OAUTH_AUTHORIZATION_DETAILS_INVALID" },
        { "details-not-json", "invalid_authorization_details", "OAUTH_AUTHORIZATION_DETAILS_INVALID" },
        { "details-two-entries", "invalid_authorization_details", "OAUTH_AUTHORIZATION_DETAILS_INVALID" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task Every_refusal_answers_its_oauth_error_with_the_broker_reason_and_leaves_no_task(string kind, string error, string reason)
    {
        var now = DateTimeOffset.UtcNow;
        var trust = Broker.Trust;
        var task = "refused-" + kind;
        var form = _oauth.Exchange(task: task);
        using var attacker = new TestTrustDomain("evil.org");
        switch (kind)
        {
            case "no-proof": form.Remove("subject_token"); form.Remove("subject_token_type"); break;
            case "expired-proof": form["subject_token"] = trust.MintSvid(trust.SpiffeId(), BrokerScenario.Audience, now.AddMinutes(-10), TimeSpan.FromMinutes(5)); break;
            case "wrong-audience-proof": form["subject_token"] = trust.MintSvid(trust.SpiffeId(), "spiffe://example.org/someone-else", now, TimeSpan.FromMinutes(5)); break;
            case "alg-none-proof": form["subject_token"] = TokenForger.AlgNone(Broker.Svid()); break;
            case "zero-signature-proof": form["subject_token"] = TokenForger.ZeroSignature(Broker.Svid()); break;
            case "oversize-proof": form["subject_token"] = TokenForger.Oversize(trust, trust.SpiffeId(), BrokerScenario.Audience, now, 9000); break;
            case "foreign-trust-domain": form["subject_token"] = attacker.MintSvid("spiffe://evil.org/agents/planner", BrokerScenario.Audience, now, TimeSpan.FromMinutes(5)); break;
            case "scope-escalation": form["scope"] = "repo:read deploy:staging"; break;
            case "no-scope": form.Remove("scope"); break;
            case "malformed-scope": form["scope"] = "quote\"d"; break;
            case "audience-outside-policy": form["resource"] = "https://elsewhere.example.org"; break;
            case "no-resource": form.Remove("resource"); break;
            case "two-resources": form["audience"] = "https://elsewhere.example.org"; break;
            case "unknown-phase": form["authorization_details"] = OAuthScenario.Details(task, "deployment"); break;
            case "phase-without-rule": form["authorization_details"] = OAuthScenario.Details(task, "recovery"); break;
            case "workload-outside-rules": form["subject_token"] = Broker.Svid("/outsiders/x"); break;
            case "malformed-task-id": form["authorization_details"] = OAuthScenario.Details("tab\there", "planning"); break;
            case "long-task-id": form["authorization_details"] = OAuthScenario.Details(new string('t', 129), "planning"); break;
            case "long-justification": form["authorization_details"] = OAuthScenario.Details(task, "planning", new string('j', 513)); break;
            case "unknown-grant": form["grant_type"] = "client_credentials"; break;
            case "no-grant": form.Remove("grant_type"); break;
            case "unknown-subject-token-type": form["subject_token_type"] = "urn:ietf:params:oauth:token-type:saml2"; break;
            case "missing-subject-token-type": form.Remove("subject_token_type"); break;
            case "refresh-token-requested": form["requested_token_type"] = "urn:ietf:params:oauth:token-type:refresh_token"; break;
            case "actor-token": form["actor_token"] = Broker.Svid("/agents/sub"); form["actor_token_type"] = OAuthScenario.JwtType; break;
            case "details-other-type": form["authorization_details"] = """[{"type":"payment_initiation","task_id":"t","phase":"planning"}]"""; break;
            case "details-unknown-member": form["authorization_details"] = """[{"type":"agent_task","task_id":"t","phase":"planning","scopes":"x"}]"""; break;
            case "details-not-json": form["authorization_details"] = "[{"; break;
            case "details-two-entries": form["authorization_details"] = """[{"type":"agent_task","task_id":"t"},{"type":"agent_task","task_id":"u"}]"""; break;
        }

        var pairs = form.ToList();
        if (kind == "repeated-grant")
        {
            pairs.Add(new("grant_type", OAuthScenario.JwtBearer));
        }

        var answer = await _oauth.TokenAsync(pairs);

        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal("no-store", answer.CacheControl);
        Assert.Equal(error, answer.Error);
        Assert.Equal(reason, answer.Reason);
        Assert.StartsWith(reason + ": ", answer["error_description"]);
        Assert.Null(answer["access_token"]);

        // The task was never claimed: the rightful agent can still start it.
        var retry = await _oauth.TokenAsync(_oauth.Exchange(task: task.Length > 128 ? "ok" : task));
        Assert.Equal(HttpStatusCode.OK, retry.Status);
    }

    [Fact]
    public async Task Scope_escalation_names_the_refused_scopes_in_broker_metadata()
    {
        var answer = await _oauth.TokenAsync(_oauth.Exchange(scope: "repo:read deploy:staging"));

        Assert.Equal("deploy:staging", answer.Body.GetProperty("broker_metadata").GetProperty("scopes").GetString());
        Assert.Equal("planning", answer.Body.GetProperty("broker_metadata").GetProperty("phase").GetString());
    }

    [Fact]
    public async Task Refusals_and_issuance_are_audited_exactly_as_over_grpc()
    {
        var issued = await _oauth.TokenAsync(_oauth.Exchange(task: "audited"));
        var noProof = _oauth.Exchange(task: "audited");
        noProof.Remove("subject_token");
        noProof.Remove("subject_token_type");
        await _oauth.TokenAsync(noProof);
        await _oauth.TokenAsync(_oauth.Exchange(task: "audited", scope: "deploy:staging"));

        var lines = (await Broker.AuditLinesAsync()).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        var record = lines.Single(e => e.GetProperty("type").GetString() == "credential.issued");
        Assert.Equal(issued["token_id"], record.GetProperty("token_id").GetString());
        Assert.Equal("audited", record.GetProperty("task_id").GetString());
        Assert.StartsWith("ipv4:127.0.0.1:", record.GetProperty("peer").GetString());
        Assert.Contains(lines, e => e.GetProperty("type").GetString() == "attestation.refused" && e.GetProperty("reason").GetString() == "ATTESTATION_MISSING");
        Assert.Contains(lines, e => e.GetProperty("type").GetString() == "credential.refused" && e.GetProperty("reason").GetString() == "SCOPE_NOT_ALLOWED");
        Assert.DoesNotContain(lines, e => e.GetRawText().Contains(issued["access_token"]!.Split('.')[2], StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_ended_task_and_another_workloads_task_are_invalid_grants()
    {
        Assert.Equal(HttpStatusCode.OK, (await _oauth.TokenAsync(_oauth.Exchange(task: "claimed"))).Status);
        var stolen = await _oauth.TokenAsync(_oauth.Exchange(svid: Broker.Svid("/agents/other"), task: "claimed"));
        await Broker.Client.EndTaskAsync(new EndTaskRequest { TaskId = "claimed", Attestation = new AttestationProof { JwtSvid = Broker.Svid() } });
        var ended = await _oauth.TokenAsync(_oauth.Exchange(task: "claimed"));

        Assert.Equal(("invalid_grant", "TASK_NOT_OWNED"), (stolen.Error, stolen.Reason));
        Assert.Equal(("invalid_grant", "TASK_ENDED"), (ended.Error, ended.Reason));
    }

    [Fact]
    public async Task A_frozen_fleet_answers_temporarily_unavailable_with_503()
    {
        await Broker.Admin.FreezeAsync(new FreezeRequest { Reason = "drill" }, Broker.As("alice", "responder"));

        var answer = await _oauth.TokenAsync(_oauth.Exchange());

        Assert.Equal(HttpStatusCode.ServiceUnavailable, answer.Status);
        Assert.Equal(("temporarily_unavailable", "ISSUANCE_FROZEN"), (answer.Error, answer.Reason));
    }

    [Fact]
    public async Task A_json_body_or_an_oversized_form_is_an_invalid_request()
    {
        using var json = new StringContent("{\"grant_type\":\"x\"}", System.Text.Encoding.UTF8, "application/json");
        var asJson = await OAuthAnswer.ReadAsync(await _oauth.Http.PostAsync("/oauth2/token", json));
        var oversized = await _oauth.TokenAsync(new Dictionary<string, string?> { ["grant_type"] = OAuthScenario.JwtBearer, ["assertion"] = new string('a', 70_000) });

        Assert.Equal(("invalid_request", "OAUTH_REQUEST_MALFORMED"), (asJson.Error, asJson.Reason));
        Assert.Equal(("invalid_request", "OAUTH_REQUEST_MALFORMED"), (oversized.Error, oversized.Reason));
    }
}
