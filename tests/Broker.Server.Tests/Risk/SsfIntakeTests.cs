using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Broker.Client;
using Broker.Core.Policy;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Broker.V1;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Broker.Server.Tests.Risk;

/// <summary>
/// Shared Signals push delivery (RFC 8935) into a real node with real Redis: SETs signed by the
/// configured transmitter's key become signals on the gRPC path; anything else is refused with
/// the RFC's error codes and changes nothing.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class SsfIntakeTests(RedisFixture redis) : IAsyncLifetime
{
    private const string Transmitter = "https://risk.example.org";
    private const string RiskLevelChange = "https://schemas.openid.net/secevent/caep/event-type/risk-level-change";
    private const string SessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
    private const string CredentialCompromise = "https://schemas.openid.net/secevent/risc/event-type/credential-compromise";

    private readonly TestTrustDomain _transmitter = new("risk.example.org", keyId: "ssf-1");
    private readonly TestTrustDomain _stranger = new("stranger.example.org", keyId: "ssf-1");
    private readonly HttpClient _http = new();
    private BrokerScenario _a = null!;

    private string Agent => _a.Trust.SpiffeId("/agents/planner");

    private RiskAdminService.RiskAdminServiceClient RiskAdmin => new(_a.Channel);

    public async Task InitializeAsync()
    {
        _a = await BrokerScenario.StartAsync(redis.Server.Configuration, redisPrefix: RedisFixture.NewPrefix());
        var jwks = _transmitter.WriteJwksFile("ssf-jwks.json", use: null);
        var policy = (await File.ReadAllTextAsync(_a.PolicyPath)).TrimEnd() + "\n" + $"""
            signals:
              sources: [spiffe://example.org/runtime-protection]
              ssf:
                issuer: {Transmitter}
                jwks_file: {jwks}

            """;
        await File.WriteAllTextAsync(_a.PolicyPath, policy);
        var provider = _a.Host.Services.GetRequiredService<IPolicyProvider>();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (provider.Current.Signals?.Ssf is null && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.NotNull(provider.Current.Signals?.Ssf);
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _a.DisposeAsync();
        _transmitter.Dispose();
        _stranger.Dispose();
    }

    private static JsonObject Header(string alg = "ES256", string typ = "secevent+jwt", string kid = "ssf-1") =>
        new() { ["alg"] = alg, ["typ"] = typ, ["kid"] = kid };

    private JsonObject Payload(string eventType, JsonObject body, string? jti = null, string iss = Transmitter, string? aud = null, DateTimeOffset? iat = null, string? subject = null) => new()
    {
        ["iss"] = iss,
        ["aud"] = aud ?? BrokerScenario.Audience,
        ["iat"] = (iat ?? DateTimeOffset.UtcNow).ToUnixTimeSeconds(),
        ["jti"] = jti ?? Guid.NewGuid().ToString("N"),
        ["sub_id"] = new JsonObject { ["format"] = "uri", ["uri"] = subject ?? Agent },
        ["events"] = new JsonObject { [eventType] = body },
    };

    private static JsonObject Level(string current, long? at = null) => new()
    {
        ["current_level"] = current,
        ["previous_level"] = "LOW",
        ["event_timestamp"] = at ?? DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
    };

    private string Set(JsonObject payload, JsonObject? header = null) => _transmitter.Sign(header ?? Header(), payload);

    private async Task<(HttpStatusCode Status, string? Err, string? Description)> PostAsync(string set, string contentType = "application/secevent+jwt")
    {
        using var content = new StringContent(set);
        content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        using var response = await _http.PostAsync(_a.Host.Issuer + "/ssf/events", content);
        var text = await response.Content.ReadAsStringAsync();
        if (text.Length == 0)
        {
            return (response.StatusCode, null, null);
        }

        using var json = JsonDocument.Parse(text);
        return (response.StatusCode, json.RootElement.GetProperty("err").GetString(), json.RootElement.GetProperty("description").GetString());
    }

    private IssueCredentialRequest Execution(string task) => _a.Request(task: task, phase: Phase.Execution, scopes: "deploy:staging");

    [Fact]
    public async Task An_accepted_risk_level_change_gates_execution_and_planning_still_works()
    {
        var low = await PostAsync(Set(Payload(RiskLevelChange, Level("LOW", DateTimeOffset.UtcNow.AddSeconds(-5).ToUnixTimeSeconds()), jti: "set-low")));
        Assert.Equal(HttpStatusCode.Accepted, low.Status);
        Assert.NotEmpty((await _a.Client.IssueCredentialAsync(Execution("ssf-1"))).AccessToken);

        var high = await PostAsync(Set(Payload(RiskLevelChange, Level("HIGH"), jti: "set-high")));
        Assert.Equal(HttpStatusCode.Accepted, high.Status);

        var refused = await _a.RefusedAsync(Execution("ssf-2"));
        Assert.Equal(StatusCode.PermissionDenied, refused.Status);
        Assert.Equal("RISK_TOO_HIGH", refused.Reason);
        Assert.Equal("ssf:set-high", refused.Metadata["signal_id"]);
        Assert.Equal("high", refused.Metadata["level"]);
        Assert.NotEmpty((await _a.Client.IssueCredentialAsync(_a.Request(task: "ssf-3"))).AccessToken);

        var shown = await RiskAdmin.GetRiskAsync(new GetRiskRequest { Agent = Agent }, _a.As("alice", "responder"));
        Assert.Equal("ssf:set-high", shown.Current.SignalId);
    }

    [Fact]
    public async Task Hostile_or_malformed_sets_get_precise_400s_are_audited_and_change_nothing()
    {
        var ok = Payload(RiskLevelChange, Level("HIGH"));

        // Signed by another key under the transmitter's kid.
        var forged = _stranger.Sign(Header(), ok);
        Assert.Equal("invalid_key", (await PostAsync(forged)).Err);

        // Unknown kid.
        Assert.Equal("invalid_key", (await PostAsync(Set(Payload(RiskLevelChange, Level("HIGH")), Header(kid: "other")))).Err);

        // Another issuer, validly signed.
        Assert.Equal("invalid_issuer", (await PostAsync(Set(Payload(RiskLevelChange, Level("HIGH"), iss: "https://evil.example.org")))).Err);

        // Another audience.
        Assert.Equal("invalid_audience", (await PostAsync(Set(Payload(RiskLevelChange, Level("HIGH"), aud: "https://someone-else.example.org")))).Err);

        // alg none (unsigned), and an HMAC alg.
        var none = TestTrustDomain.Encode(Header(alg: "none").ToJsonString()) + "." + TestTrustDomain.Encode(Payload(RiskLevelChange, Level("HIGH")).ToJsonString()) + ".";
        var noneAnswer = await PostAsync(none);
        Assert.Equal("invalid_request", noneAnswer.Err);
        var hs = await PostAsync(TestTrustDomain.Encode(Header(alg: "HS256").ToJsonString()) + "." + TestTrustDomain.Encode(Payload(RiskLevelChange, Level("HIGH")).ToJsonString()) + ".c2ln");
        Assert.Equal("invalid_request", hs.Err);
        Assert.Contains("alg", hs.Description, StringComparison.Ordinal);

        // Wrong typ, wrong content type, too old, unknown event type, unknown level, no subject.
        Assert.Contains("typ", (await PostAsync(Set(Payload(RiskLevelChange, Level("HIGH")), Header(typ: "JWT")))).Description, StringComparison.Ordinal);
        Assert.Equal("invalid_request", (await PostAsync(Set(Payload(RiskLevelChange, Level("HIGH"))), "application/json")).Err);
        Assert.Contains("older", (await PostAsync(Set(Payload(RiskLevelChange, Level("HIGH"), iat: DateTimeOffset.UtcNow.AddHours(-1))))).Description, StringComparison.Ordinal);
        var unknown = await PostAsync(Set(Payload("https://schemas.openid.net/secevent/caep/event-type/token-claims-change", new JsonObject())));
        Assert.Equal("invalid_request", unknown.Err);
        Assert.Contains("not accepted", unknown.Description, StringComparison.Ordinal);
        Assert.Contains("current_level", (await PostAsync(Set(Payload(RiskLevelChange, Level("SEVERE"))))).Description, StringComparison.Ordinal);

        // Nothing above reached the risk state.
        var shown = await RiskAdmin.GetRiskAsync(new GetRiskRequest { Agent = Agent }, _a.As("alice", "responder"));
        Assert.Null(shown.Current);
        Assert.Equal("RISK_UNKNOWN", (await _a.RefusedAsync(Execution("ssf-hostile"))).Reason);

        var audit = string.Join('\n', await _a.AuditLinesAsync());
        Assert.Contains("SSF_SET_REFUSED:invalid_key", audit, StringComparison.Ordinal);
        Assert.Contains("SSF_SET_REFUSED:invalid_issuer", audit, StringComparison.Ordinal);
        Assert.Contains("SSF_SET_REFUSED:invalid_audience", audit, StringComparison.Ordinal);
        Assert.Contains("SSF_SET_REFUSED:invalid_request", audit, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_oversized_body_is_refused_without_reading_it_all(bool chunked)
    {
        // A validly signed SET just over the attestation proof limit (8 KiB by default).
        var set = Set(Payload(RiskLevelChange, Level("HIGH"), jti: "set-big").Also(p => p["padding"] = new string('a', 8 * 1024)));
        using var content = chunked ? (HttpContent)new StreamContent(new UnknownLengthStream(Encoding.ASCII.GetBytes(set))) : new StringContent(set);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/secevent+jwt");

        using var response = await _http.PostAsync(_a.Host.Issuer + "/ssf/events", content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var answer = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("invalid_request", answer.GetProperty("err").GetString());
        Assert.Contains("larger than 8192 bytes", answer.GetProperty("description").GetString(), StringComparison.Ordinal);
        var shown = await RiskAdmin.GetRiskAsync(new GetRiskRequest { Agent = Agent }, _a.As("alice", "responder"));
        Assert.Null(shown.Current);
    }

    /// <summary>A body whose length is not known up front, so the client sends it chunked.</summary>
    private sealed class UnknownLengthStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
    }

    [Fact]
    public async Task A_replayed_jti_is_refused_and_changes_nothing()
    {
        var first = Set(Payload(RiskLevelChange, Level("LOW", DateTimeOffset.UtcNow.AddSeconds(-5).ToUnixTimeSeconds()), jti: "set-once"));
        Assert.Equal(HttpStatusCode.Accepted, (await PostAsync(first)).Status);

        var replay = await PostAsync(first);
        Assert.Equal(HttpStatusCode.BadRequest, replay.Status);
        Assert.Equal("invalid_request", replay.Err);
        Assert.Contains("replay", replay.Description, StringComparison.Ordinal);

        // The same jti with other content is a replay too.
        var reused = await PostAsync(Set(Payload(RiskLevelChange, Level("HIGH"), jti: "set-once")));
        Assert.Equal("invalid_request", reused.Err);

        var shown = await RiskAdmin.GetRiskAsync(new GetRiskRequest { Agent = Agent }, _a.As("alice", "responder"));
        Assert.Equal(RiskLevel.Low, shown.Current.Level);
        Assert.Contains("signal ssf:set-once", string.Join('\n', await _a.AuditLinesAsync()), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Session_revoked_revokes_the_agents_live_tokens()
    {
        var live = (await _a.Client.IssueCredentialAsync(_a.Request(task: "ssf-session"))).AccessToken;
        var introspect = new RevocationService.RevocationServiceClient(_a.Channel);
        Assert.True((await introspect.IntrospectAsync(new IntrospectRequest { Token = live })).Active);

        var answer = await PostAsync(Set(Payload(SessionRevoked, new JsonObject { ["event_timestamp"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds() }, jti: "set-session")));
        Assert.Equal(HttpStatusCode.Accepted, answer.Status);
        Assert.Equal("revoked", (await introspect.IntrospectAsync(new IntrospectRequest { Token = live })).InactiveReason);

        var audit = string.Join('\n', await _a.AuditLinesAsync());
        Assert.Contains("CAEP session-revoked from https://risk.example.org (signal ssf:set-session)", audit, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Credential_compromise_is_critical_and_contains_the_agent()
    {
        var live = (await _a.Client.IssueCredentialAsync(_a.Request(task: "ssf-crit"))).AccessToken;
        var answer = await PostAsync(Set(Payload(CredentialCompromise, new JsonObject { ["credential_type"] = "x509" }, jti: "set-compromise")));
        Assert.Equal(HttpStatusCode.Accepted, answer.Status);

        var frozen = await _a.RefusedAsync(_a.Request(task: "ssf-crit-2"));
        Assert.Equal("AGENT_FROZEN", frozen.Reason);
        Assert.Equal("ssf:set-compromise", frozen.Metadata["signal_id"]);
        var introspect = new RevocationService.RevocationServiceClient(_a.Channel);
        Assert.Equal("revoked", (await introspect.IntrospectAsync(new IntrospectRequest { Token = live })).InactiveReason);
    }
}

internal static class JsonObjectEdits
{
    public static JsonObject Also(this JsonObject json, Action<JsonObject> edit)
    {
        edit(json);
        return json;
    }
}
