using System.Net;
using System.Security.Cryptography.X509Certificates;
using Broker.Server.Tests.Infrastructure;
using Broker.V1;

namespace Broker.Server.Tests.Issuance;

/// <summary>
/// A token bound to an X.509-SVID (<c>cnf.x5t#S256</c>, RFC 8705) at an API using the
/// resource-server SDK over real TLS: accepted only over a connection presenting that certificate.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class CertificateBoundTokenTests(RedisFixture redis) : IAsyncLifetime
{
    private BrokerScenario _broker = null!;
    private X509Certificate2 _svid = null!;
    private ResourceApi _api = null!;
    private X509Certificate2 _apiCertificate = null!;

    public async Task InitializeAsync()
    {
        _broker = await BrokerScenario.StartAsync(redis.Server.Configuration, tls: true, redisPrefix: RedisFixture.NewPrefix());
        _svid = _broker.Pki.IssueSvid("spiffe://example.org/agents/mtls");
        var trusted = _broker.ServerCertificate!.GetCertHashString();
        var revocations = new SocketsHttpHandler();
        revocations.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, _) => cert?.GetCertHashString() == trusted;
        _apiCertificate = _broker.Pki.IssueServerCertificate();
        _api = await ResourceApi.StartAsync(_broker.Host.Issuer, BrokerScenario.ResourceAudience, _broker.Host.GrpcAddress, _broker.Operators.ResourceServerToken, _apiCertificate, revocations);
    }

    public async Task DisposeAsync()
    {
        await _api.DisposeAsync();
        _apiCertificate.Dispose();
        _svid.Dispose();
        await _broker.DisposeAsync();
    }

    [Fact]
    public async Task A_certificate_bound_token_is_accepted_only_with_its_certificate()
    {
        using var channel = _broker.Host.CreateChannel(_svid, _broker.ServerCertificate);
        var request = _broker.Request(task: "mtls-bound");
        request.Attestation = new AttestationProof { X509Svid = true };
        var token = (await new CredentialService.CredentialServiceClient(channel).IssueCredentialAsync(request)).AccessToken;
        using var other = _broker.Pki.IssueSvid("spiffe://example.org/agents/other");

        using var holder = Client(_svid);
        using (var accepted = await GetAsync(holder, token))
        {
            Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        }

        using var withOther = Client(other);
        using var none = Client(null);
        foreach (var client in new[] { withOther, none })
        {
            using var refused = await GetAsync(client, token);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.Equal("Bearer error=\"invalid_token\", error_description=\"token is bound to another client certificate\"", Assert.Single(refused.Headers.WwwAuthenticate).ToString());
        }
    }

    private HttpClient Client(X509Certificate2? certificate)
    {
        var handler = new SocketsHttpHandler();
        var trusted = _apiCertificate.GetCertHashString();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, _) => cert?.GetCertHashString() == trusted;
        if (certificate is not null)
        {
            handler.SslOptions.ClientCertificates = [certificate];
        }

        return new HttpClient(handler) { BaseAddress = new Uri(_api.Address) };
    }

    private static async Task<HttpResponseMessage> GetAsync(HttpClient client, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/whoami");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        return await client.SendAsync(request);
    }
}
