using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Broker.V1;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Broker.Server.Tests.Hosting;

/// <summary>
/// A node logging at Trace (every framework and broker category) through issuance, hostile
/// proofs, introspection, a rejected operator token and a revocation: the logs name token ids
/// and reasons, and never hold a credential, a proof or an operator token.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class LogHygieneTests(RedisFixture redis) : IAsyncLifetime
{
    private readonly string _prefix = RedisFixture.NewPrefix();
    private readonly CapturingLoggerProvider _logs = new();
    private BrokerScenario _scenario = null!;
    private BrokerTestHost _node = null!;
    private Grpc.Net.Client.GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        _scenario = await BrokerScenario.StartAsync(redis.Server.Configuration, redisPrefix: _prefix);
        _node = await _scenario.StartPeerAsync(redis.Server.Configuration, _prefix, node => node with { MinimumLogLevel = LogLevel.Trace });
        _node.Services.GetRequiredService<ILoggerFactory>().AddProvider(_logs);
        _channel = _node.CreateChannel();
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _node.DisposeAsync();
        await _scenario.DisposeAsync();
    }

    [Fact]
    public async Task Logs_name_ids_and_reasons_but_never_credentials_proofs_or_operator_tokens()
    {
        var credentials = new CredentialService.CredentialServiceClient(_channel);
        var admin = new AdminService.AdminServiceClient(_channel);
        var revocation = new RevocationService.RevocationServiceClient(_channel);

        var svid = _scenario.Svid();
        var issued = await credentials.IssueCredentialAsync(_scenario.Request(svid, task: "log-hygiene"));

        var tampered = svid[..^6] + (svid[^6] == 'A' ? "BBBBBB" : "AAAAAA");
        var forged = TokenForger.AlgNone(_scenario.Svid());
        var badProof = await Assert.ThrowsAsync<RpcException>(async () => await credentials.IssueCredentialAsync(_scenario.Request(tampered, task: "log-hygiene-2")));
        var noneProof = await Assert.ThrowsAsync<RpcException>(async () => await credentials.IssueCredentialAsync(_scenario.Request(forged, task: "log-hygiene-3")));
        Assert.Equal(StatusCode.Unauthenticated, badProof.StatusCode);
        Assert.Equal(StatusCode.Unauthenticated, noneProof.StatusCode);

        Assert.True((await revocation.IntrospectAsync(new IntrospectRequest { Token = issued.AccessToken })).Active);

        // An agent token where an operator token belongs.
        var wrongToken = await Assert.ThrowsAsync<RpcException>(async () => await admin.ListRevocationsAsync(
            new ListRevocationsRequest(),
            new Metadata { { "authorization", "Bearer " + issued.AccessToken } }));
        Assert.Equal(StatusCode.Unauthenticated, wrongToken.StatusCode);

        var operatorHeaders = _scenario.As("alice", "responder");
        var operatorToken = operatorHeaders.GetValue("authorization")!["Bearer ".Length..];
        await admin.RevokeAsync(
            new RevokeRequest { Reason = "log hygiene", Selectors = { new Broker.V1.RevocationSelector { TokenId = issued.TokenId } } },
            operatorHeaders);

        var logs = _logs.Messages.ToArray();
        Assert.NotEmpty(logs);
        var secrets = new Dictionary<string, string>
        {
            ["access token signature"] = Signature(issued.AccessToken),
            ["JWT-SVID signature"] = Signature(svid),
            ["tampered JWT-SVID signature"] = Signature(tampered),
            ["forged JWT-SVID body"] = forged.Split('.')[1],
            ["operator token signature"] = Signature(operatorToken),
        };
        foreach (var (what, secret) in secrets)
        {
            var leak = logs.FirstOrDefault(m => m.Contains(secret, StringComparison.Ordinal));
            Assert.True(leak is null, $"the {what} reached the logs: {leak}");
        }

        // What operators do need: the token id, and why calls were refused.
        Assert.Contains(logs, m => m.Contains(issued.TokenId, StringComparison.Ordinal) && m.Contains("Issued", StringComparison.Ordinal));
        Assert.Contains(logs, m => m.Contains(Broker.Client.BrokerRefusal.From(badProof).Reason!, StringComparison.Ordinal));
    }

    private static string Signature(string jwt) => jwt.Split('.')[2];
}
