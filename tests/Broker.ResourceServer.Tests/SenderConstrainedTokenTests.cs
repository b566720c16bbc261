using System.Net;
using System.Text.Json;
using Broker.ResourceServer.Tests.Infrastructure;
using Broker.Testing;

namespace Broker.ResourceServer.Tests;

/// <summary>
/// A DPoP-bound token (from the broker's real token endpoint, with a real key) at an API using
/// the SDK on real Kestrel: accepted only as <c>Authorization: DPoP</c> with a fresh proof by
/// the bound key for this request and this token, once; every other use is a 401 with a DPoP
/// challenge.
/// </summary>
public sealed class SenderConstrainedTokenTests : IAsyncLifetime
{
    private readonly TestDpopKey _key = new();
    private BrokerNode _broker = null!;
    private ProtectedApi _api = null!;

    public async Task InitializeAsync()
    {
        _broker = await BrokerNode.StartAsync();
        _api = await ProtectedApi.StartAsync(_broker.ResourceServerTokenFile, _broker.Issuer, _broker.GrpcAddress);
        await _api.WaitCurrentAsync();
    }

    public async Task DisposeAsync()
    {
        await _api.DisposeAsync();
        await _broker.DisposeAsync();
        _key.Dispose();
    }

    private string WhoAmI => _api.Address + "/whoami";

    [Fact]
    public async Task A_dpop_bound_token_with_a_fresh_proof_by_its_key_is_accepted()
    {
        var token = await DpopTokenAsync();

        using var response = await SendAsync("DPoP", token, _key.Proof("GET", WhoAmI, accessToken: token));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("spiffe://example.org/agents/planner", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_dpop_bound_token_sent_as_bearer_is_refused_with_a_dpop_challenge()
    {
        var token = await DpopTokenAsync();

        using var response = await SendAsync("Bearer", token, _key.Proof("GET", WhoAmI, accessToken: token));

        AssertChallenge(response, "invalid_token", "DPoP-bound token must be sent with the DPoP scheme");
    }

    public static TheoryData<string, string, string> Misuses => new()
    {
        { "no-proof", "invalid_dpop_proof", "send exactly one DPoP proof" },
        { "other-key", "invalid_dpop_proof", "DPoP proof is signed by another key than the token is bound to" },
        { "no-ath", "invalid_dpop_proof", "DPoP proof ath does not match the access token" },
        { "other-token-ath", "invalid_dpop_proof", "DPoP proof ath does not match the access token" },
        { "other-uri", "invalid_dpop_proof", "DPoP proof names another method or URI" },
        { "other-method", "invalid_dpop_proof", "DPoP proof names another method or URI" },
        { "stale", "invalid_dpop_proof", "DPoP proof is too old or from the future" },
        { "tampered", "invalid_dpop_proof", "DPoP proof is not valid" },
    };

    [Theory]
    [MemberData(nameof(Misuses))]
    public async Task A_dpop_bound_token_without_a_matching_proof_is_refused(string misuse, string error, string description)
    {
        var token = await DpopTokenAsync();
        using var other = new TestDpopKey();
        var proof = misuse switch
        {
            "no-proof" => null,
            "other-key" => other.Proof("GET", WhoAmI, accessToken: token),
            "no-ath" => _key.Proof("GET", WhoAmI),
            "other-token-ath" => _key.Proof("GET", WhoAmI, accessToken: token + "x"),
            "other-uri" => _key.Proof("GET", _api.Address + "/deploy/prod", accessToken: token),
            "other-method" => _key.Proof("POST", WhoAmI, accessToken: token),
            "stale" => _key.Proof("GET", WhoAmI, accessToken: token, issuedAt: DateTimeOffset.UtcNow.AddMinutes(-5)),
            _ => _key.Proof("GET", WhoAmI, accessToken: token)[..^4] + "AAAA",
        };

        using var response = await SendAsync("DPoP", token, proof);

        AssertChallenge(response, error, description);
    }

    [Fact]
    public async Task A_replayed_proof_is_refused()
    {
        var token = await DpopTokenAsync();
        var proof = _key.Proof("GET", WhoAmI, accessToken: token);
        using (var first = await SendAsync("DPoP", token, proof))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        using var replay = await SendAsync("DPoP", token, proof);

        AssertChallenge(replay, "invalid_dpop_proof", "DPoP proof was already used");
    }

    [Fact]
    public async Task A_bearer_token_sent_with_the_dpop_scheme_is_refused()
    {
        var bearer = (await _broker.IssueAsync("task-plain")).AccessToken;

        using var response = await SendAsync("DPoP", bearer, _key.Proof("GET", WhoAmI, accessToken: bearer));
        using var asBearer = await SendAsync("Bearer", bearer, null);

        AssertChallenge(response, "invalid_token", "token is not DPoP-bound; send it as Bearer");
        Assert.Equal(HttpStatusCode.OK, asBearer.StatusCode);
    }

    private static void AssertChallenge(HttpResponseMessage response, string error, string description)
    {
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal(
            $"DPoP error=\"{error}\", error_description=\"{description}\", algs=\"ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512\"",
            Assert.Single(response.Headers.WwwAuthenticate).ToString());
    }

    private async Task<HttpResponseMessage> SendAsync(string scheme, string token, string? proof)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/whoami");
        request.Headers.TryAddWithoutValidation("Authorization", scheme + " " + token);
        if (proof is not null)
        {
            request.Headers.TryAddWithoutValidation("DPoP", proof);
        }

        return await _api.Http.SendAsync(request);
    }

    /// <summary>A token bound to <see cref="_key"/> by the broker's token endpoint (jwt-bearer with a JWT-SVID and a DPoP proof).</summary>
    private async Task<string> DpopTokenAsync()
    {
        using var http = new HttpClient();
        var endpoint = _broker.Issuer + "/oauth2/token";
        using var request = new HttpRequestMessage(HttpMethod.Post, endpoint)
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "urn:ietf:params:oauth:grant-type:jwt-bearer",
                ["assertion"] = _broker.Svid(),
                ["resource"] = BrokerNode.ApiAudience,
                ["scope"] = "repo:read",
                ["authorization_details"] = """[{"type":"agent_task","task_id":"task-dpop","phase":"planning"}]""",
            }),
        };
        request.Headers.Add("DPoP", _key.Proof("POST", endpoint));
        using var response = await http.SendAsync(request);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.GetRawText());
        Assert.Equal("DPoP", body.GetProperty("token_type").GetString());
        return body.GetProperty("access_token").GetString()!;
    }
}
