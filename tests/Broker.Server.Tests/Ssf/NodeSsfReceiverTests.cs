using System.Text.Json;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;

namespace Broker.Server.Tests.Ssf;

/// <summary>
/// A Shared Signals receiver written outside Broker's code (Node.js with the stock <c>jose</c>
/// library, tests/interop/node/receiver.mjs) against a real node with real Redis: it validates a
/// Broker token offline, registers a poll or push stream, has a responder revoke the token, verifies
/// every SET against the broker's JWKS, and refuses the token within the revocation bound.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class NodeSsfReceiverTests(RedisFixture redis) : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);
    private BrokerScenario _a = null!;

    public async Task InitializeAsync() => _a = await BrokerScenario.StartAsync(redis.Server.Configuration, redisPrefix: RedisFixture.NewPrefix());

    public async Task DisposeAsync() => await _a.DisposeAsync();

    [Theory]
    [InlineData("poll")]
    [InlineData("push")]
    public async Task A_node_receiver_verifies_the_sets_and_refuses_a_revoked_token_within_the_bound(string delivery)
    {
        if (!File.Exists(Path.Combine(NodeOAuthClient.Directory, "node_modules", "jose", "package.json")))
        {
            Assert.Fail($"The Node receiver's packages are not installed: run 'npm ci' in {NodeOAuthClient.Directory} (./test.sh does).");
        }

        var issued = await _a.Client.IssueCredentialAsync(_a.Request(task: "node-ssf-" + delivery));
        var run = await NodeProcess.RunAsync(["receiver.mjs"], NodeOAuthClient.Directory, environment: new Dictionary<string, string>
        {
            ["BROKER_ISSUER"] = _a.Host.Issuer,
            ["BROKER_RESOURCE"] = BrokerScenario.ResourceAudience,
            ["ACCESS_TOKEN"] = issued.AccessToken,
            ["RESOURCE_SERVER_TOKEN"] = _a.Operators.Token("node-receiver-" + delivery, [ResourceServerTokenHandler.Role], ResourceServerTokenHandler.Audience),
            ["OPERATOR_TOKEN"] = _a.Operators.Token("alice", ["responder"]),
            ["SSF_DELIVERY"] = delivery,
            ["REVOCATION_BOUND_MS"] = ((int)Bound.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        Assert.True(run.ExitCode == 0, $"receiver.mjs exited {run.ExitCode}:\n{run.Error}\n{run.Output}");
        var result = JsonDocument.Parse(run.Output).RootElement;

        Assert.True(result.GetProperty("accepted_before").GetBoolean());
        Assert.Equal(JsonValueKind.Number, result.GetProperty("refused_after_ms").ValueKind);
        Assert.InRange(result.GetProperty("refused_after_ms").GetInt64(), 0, (long)Bound.TotalMilliseconds);
        Assert.Equal(delivery == "push" ? "urn:ietf:rfc:8935" : "urn:ietf:rfc:8936", result.GetProperty("delivery").GetString());
        Assert.Equal(0, result.GetProperty("push_errors").GetArrayLength());
        Assert.Equal(204, result.GetProperty("deleted").GetInt32());

        // The SET that refused the token names it by jwt_id, and each SET was verified once.
        var verified = result.GetProperty("verified").EnumerateArray().ToList();
        var token = Assert.Single(verified, v => v.GetProperty("kind").GetString() == "token");
        Assert.Equal("jwt_id", token.GetProperty("sub_id").GetProperty("format").GetString());
        Assert.Equal(issued.TokenId, token.GetProperty("sub_id").GetProperty("jti").GetString());
        Assert.Equal(verified.Count, verified.Select(v => v.GetProperty("jti").GetString()).Distinct().Count());
        var lines = await _a.AuditLinesAsync();
        Assert.Contains(lines, l => l.Contains("\"credential.revoked\"", StringComparison.Ordinal) && l.Contains(token.GetProperty("txn").GetString()!, StringComparison.Ordinal));
    }
}
