using System.Net;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;

namespace Broker.Server.Tests.OAuth;

/// <summary>
/// Two production-mode nodes over one real Redis, requiring DPoP nonces: a nonce from either
/// node is accepted by the other (stateless), and a proof used at one node is refused at the
/// other (the jti replay cache is the shared store).
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class DpopClusterTests(RedisFixture redis) : IAsyncLifetime
{
    private static readonly Dictionary<string, string?> RequireNonce = new() { ["Broker:OAuth:Dpop:RequireNonce"] = "true" };

    private readonly TestDpopKey _key = new();
    private OAuthScenario _oauth = null!;
    private BrokerTestHost _peer = null!;
    private HttpClient _peerHttp = null!;

    public async Task InitializeAsync()
    {
        var prefix = RedisFixture.NewPrefix();
        _oauth = await OAuthScenario.StartAsync(redis.Server.Configuration, prefix, RequireNonce);
        _peer = await _oauth.Broker.StartPeerAsync(redis.Server.Configuration, prefix);
        _peerHttp = new HttpClient { BaseAddress = new Uri(_peer.HttpAddress) };
    }

    public async Task DisposeAsync()
    {
        _peerHttp.Dispose();
        await _peer.DisposeAsync();
        await _oauth.DisposeAsync();
        _key.Dispose();
    }

    [Fact]
    public async Task A_proof_without_a_nonce_gets_use_dpop_nonce_and_a_nonce_from_one_node_is_accepted_by_the_other()
    {
        var challenge = await TokenAsync(_oauth.Http, "dpop-nonce", _key.Proof("POST", _oauth.TokenEndpoint));

        Assert.Equal(HttpStatusCode.BadRequest, challenge.Status);
        Assert.Equal("use_dpop_nonce", challenge.Error);
        Assert.Equal("DPOP_NONCE_REQUIRED", challenge.Reason);
        Assert.False(string.IsNullOrEmpty(challenge.DpopNonce));

        var atPeer = await TokenAsync(_peerHttp, "dpop-nonce", _key.Proof("POST", _oauth.TokenEndpoint, nonce: challenge.DpopNonce));

        Assert.Equal(HttpStatusCode.OK, atPeer.Status);
        Assert.Equal("DPoP", atPeer["token_type"]);
        Assert.Equal(_key.Thumbprint, (string?)TokenForger.PayloadOf(atPeer["access_token"]!)["cnf"]!["jkt"]);
    }

    [Fact]
    public async Task A_proof_used_at_one_node_is_refused_when_replayed_at_another()
    {
        var nonce = (await TokenAsync(_oauth.Http, "dpop-cluster", _key.Proof("POST", _oauth.TokenEndpoint))).DpopNonce;
        var proof = _key.Proof("POST", _oauth.TokenEndpoint, nonce: nonce);
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_oauth.Http, "dpop-cluster", proof)).Status);

        var replay = await TokenAsync(_peerHttp, "dpop-cluster-replay", proof);

        Assert.Equal(HttpStatusCode.BadRequest, replay.Status);
        Assert.Equal("invalid_dpop_proof", replay.Error);
        Assert.Equal("DPOP_PROOF_REPLAYED", replay.Reason);
    }

    private Task<OAuthAnswer> TokenAsync(HttpClient http, string task, string proof) =>
        OAuthScenario.PostAsync(http, "/oauth2/token", _oauth.Exchange(task: task), [("DPoP", proof)]);
}
