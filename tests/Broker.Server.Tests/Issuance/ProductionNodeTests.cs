using System.Security.Cryptography;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Broker.V1;
using Grpc.Core;
using StackExchange.Redis;

namespace Broker.Server.Tests.Issuance;

/// <summary>Production mode: Redis-backed state shared by nodes, mTLS X.509-SVIDs, and fail-closed when Redis is gone.</summary>
[Collection(RedisCollection.Name)]
public sealed class ProductionNodeTests(RedisFixture redis) : IAsyncLifetime
{
    private readonly string _prefix = RedisFixture.NewPrefix();
    private BrokerScenario _broker = null!;

    public async Task InitializeAsync() => _broker = await BrokerScenario.StartAsync(redis.Server.Configuration, tls: true, redisPrefix: _prefix);

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Fact]
    public async Task Mutual_tls_svid_gets_a_certificate_bound_token()
    {
        using var svid = _broker.Pki.IssueSvid("spiffe://example.org/agents/mtls");
        using var channel = _broker.Host.CreateChannel(svid, _broker.ServerCertificate);
        var client = new CredentialService.CredentialServiceClient(channel);
        var request = _broker.Request(task: "mtls-task");
        request.Attestation = new AttestationProof { X509Svid = true };

        var response = await client.IssueCredentialAsync(request);

        var claims = TokenForger.PayloadOf(response.AccessToken);
        Assert.Equal("spiffe://example.org/agents/mtls", (string?)claims["sub"]);
        var expected = System.Buffers.Text.Base64Url.EncodeToString(SHA256.HashData(svid.RawData));
        Assert.Equal(expected, (string?)claims["cnf"]!["x5t#S256"]);
    }

    [Fact]
    public async Task Asking_for_mtls_attestation_without_a_client_certificate_is_unauthenticated()
    {
        var request = _broker.Request(task: "no-cert");
        request.Attestation = new AttestationProof { X509Svid = true };

        var refusal = await _broker.RefusedAsync(request);

        Assert.Equal(StatusCode.Unauthenticated, refusal.Status);
        Assert.Equal("ATTESTATION_MISSING", refusal.Reason);
    }

    public static TheoryData<string, string> BadCertificates() => new()
    {
        { "two-uri-sans", "ATTESTATION_CERTIFICATE_INVALID" },
        { "ca-leaf", "ATTESTATION_CERTIFICATE_INVALID" },
        { "expired", "ATTESTATION_CERTIFICATE_EXPIRED" },
        { "other-ca", "ATTESTATION_CERTIFICATE_INVALID" },
    };

    [Theory]
    [MemberData(nameof(BadCertificates))]
    public async Task Bad_x509_svids_are_refused_and_leave_no_task(string kind, string reason)
    {
        using var otherPki = TestPki.Create("example.org");
        var now = DateTimeOffset.UtcNow;
        using var certificate = kind switch
        {
            "two-uri-sans" => _broker.Pki.IssueSvid(new SvidSpec { UriSans = ["spiffe://example.org/agents/a", "spiffe://example.org/agents/b"] }),
            "ca-leaf" => _broker.Pki.IssueSvid(new SvidSpec { UriSans = ["spiffe://example.org/agents/a"], IsCertificateAuthority = true }),
            "expired" => _broker.Pki.IssueSvid(new SvidSpec { UriSans = ["spiffe://example.org/agents/a"], NotBefore = now.AddHours(-2), NotAfter = now.AddHours(-1) }),
            _ => otherPki.IssueSvid("spiffe://example.org/agents/a"),
        };
        using var channel = _broker.Host.CreateChannel(certificate, _broker.ServerCertificate);
        var client = new CredentialService.CredentialServiceClient(channel);
        var request = _broker.Request(task: "bad-" + kind);
        request.Attestation = new AttestationProof { X509Svid = true };

        var ex = await Assert.ThrowsAsync<RpcException>(async () => await client.IssueCredentialAsync(request));

        var refusal = Broker.Client.BrokerRefusal.From(ex);
        Assert.Equal(StatusCode.Unauthenticated, refusal.Status);
        Assert.Equal(reason, refusal.Reason);
        Assert.False(await redis.Connection.GetDatabase().KeyExistsAsync(_prefix + "task:bad-" + kind));
    }

    public static TheoryData<string, string> HostileProofs() => new()
    {
        { "alg-none", "ATTESTATION_ALG_NOT_ALLOWED" },
        { "alg-NoNe", "ATTESTATION_ALG_NOT_ALLOWED" },
        { "hs256-public-key", "ATTESTATION_ALG_NOT_ALLOWED" },
        { "zero-signature", "ATTESTATION_SIGNATURE_INVALID" },
        { "json-serialization", "ATTESTATION_MALFORMED" },
        { "five-segments", "ATTESTATION_MALFORMED" },
        { "expired", "ATTESTATION_EXPIRED" },
        { "wrong-audience", "ATTESTATION_AUDIENCE_MISMATCH" },
        { "other-trust-domain", "ATTESTATION_TRUST_DOMAIN_UNKNOWN" },
        { "oversize", "ATTESTATION_TOO_LARGE" },
        { "foreign-key", "ATTESTATION_KEY_UNKNOWN" },
    };

    [Theory]
    [MemberData(nameof(HostileProofs))]
    public async Task Hostile_proofs_over_the_wire_are_refused_with_their_reason_and_leave_no_state(string kind, string reason)
    {
        using var attacker = new TestTrustDomain("example.org", keyId: "attacker");
        var now = DateTimeOffset.UtcNow;
        var good = _broker.Svid();
        var proof = kind switch
        {
            "alg-none" => TokenForger.AlgNone(good),
            "alg-NoNe" => TokenForger.AlgNone(good, "NoNe"),
            "hs256-public-key" => TokenForger.Hs256WithPublicKey(good, System.Text.Encoding.ASCII.GetBytes(_broker.Trust.PublicKeyPem)),
            "zero-signature" => TokenForger.ZeroSignature(good),
            "json-serialization" => TokenForger.JsonSerialization(good),
            "five-segments" => TokenForger.FiveSegments(good),
            "expired" => _broker.Trust.MintSvid(_broker.Trust.SpiffeId(), BrokerScenario.Audience, now.AddMinutes(-10), TimeSpan.FromMinutes(5)),
            "wrong-audience" => _broker.Trust.MintSvid(_broker.Trust.SpiffeId(), "spiffe://example.org/someone-else", now, TimeSpan.FromMinutes(5)),
            "other-trust-domain" => _broker.Trust.MintSvid("spiffe://evil.org/agents/planner", BrokerScenario.Audience, now, TimeSpan.FromMinutes(5)),
            "oversize" => TokenForger.Oversize(_broker.Trust, _broker.Trust.SpiffeId(), BrokerScenario.Audience, now, 9000),
            _ => attacker.MintSvid(_broker.Trust.SpiffeId(), BrokerScenario.Audience, now, TimeSpan.FromMinutes(5)),
        };
        var task = "hostile-" + kind;

        var refusal = await _broker.RefusedAsync(_broker.Request(svid: proof, task: task));

        Assert.Equal(StatusCode.Unauthenticated, refusal.Status);
        Assert.Equal(reason, refusal.Reason);
        Assert.False(await redis.Connection.GetDatabase().KeyExistsAsync(_prefix + "task:" + task));
        var audit = await _broker.AuditLinesAsync();
        Assert.Contains(audit, l => l.Contains("\"attestation.refused\"", StringComparison.Ordinal) && l.Contains(reason, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Task_state_is_shared_by_nodes_on_one_redis()
    {
        await using var nodeB = await _broker.StartPeerAsync(redis.Server.Configuration, _prefix);
        using var channelB = nodeB.CreateChannel();
        var clientB = new CredentialService.CredentialServiceClient(channelB);

        await _broker.Client.IssueCredentialAsync(_broker.Request(task: "shared"));
        await clientB.EndTaskAsync(new EndTaskRequest { TaskId = "shared", Attestation = new AttestationProof { JwtSvid = _broker.Svid() } });
        var refusal = await _broker.RefusedAsync(_broker.Request(task: "shared"));
        var intruder = await Assert.ThrowsAsync<RpcException>(async () =>
            await clientB.IssueCredentialAsync(_broker.Request(svid: _broker.Svid("/agents/other"), task: "shared")));

        Assert.Equal("TASK_ENDED", refusal.Reason);
        Assert.Equal(StatusCode.FailedPrecondition, intruder.StatusCode);
    }

    [Fact]
    public async Task Redis_down_fails_issuance_closed_and_recovers_by_itself()
    {
        await _broker.Client.IssueCredentialAsync(_broker.Request(task: "before"));

        await redis.Server.KillAsync();
        Broker.Client.BrokerRefusal refused;
        try
        {
            refused = await _broker.RefusedAsync(_broker.Request(task: "during"));
        }
        finally
        {
            await redis.Server.RestartAsync();
        }

        Assert.Equal(StatusCode.Unavailable, refused.Status);
        Assert.Equal("STATE_UNAVAILABLE", refused.Reason);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        IssueCredentialResponse? after = null;
        while (after is null && DateTime.UtcNow < deadline)
        {
            try
            {
                after = await _broker.Client.IssueCredentialAsync(_broker.Request(task: "after"));
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
            {
                await Task.Delay(100);
            }
        }

        Assert.NotNull(after);
        Assert.True(await redis.Connection.GetDatabase().KeyExistsAsync(_prefix + "task:before"));
    }
}
