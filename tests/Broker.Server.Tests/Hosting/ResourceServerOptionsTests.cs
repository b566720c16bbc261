using Broker.Client;
using Broker.Server.Hosting;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Broker.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Broker.Server.Tests.Hosting;

/// <summary>Start-up checks of Broker:ResourceServers, and the pinned-key issuer for deployments without an IdP.</summary>
public sealed class ResourceServerOptionsTests
{
    private static BrokerOptions Production() => new()
    {
        Issuer = "https://broker.example.org",
        Audience = "spiffe://example.org/broker",
        Operators = { Authority = "https://idp.example.org" },
    };

    private static IEnumerable<string> Ids(ResourceServerOptions options, BrokerOptions? broker = null) =>
        ResourceServerOptionsValidator.Problems(options, broker ?? Production()).Select(p => p[..7]);

    [Fact]
    public void Defaults_are_valid_with_an_operator_authority()
    {
        Assert.Empty(Ids(new ResourceServerOptions()));
    }

    [Theory]
    [InlineData("broker-admin")]
    [InlineData("spiffe://example.org/broker")]
    [InlineData("https://broker.example.org")]
    [InlineData("")]
    public void The_resource_server_audience_must_be_its_own(string audience)
    {
        Assert.Contains("BRK1070", Ids(new ResourceServerOptions { Audience = audience }));
    }

    [Fact]
    public void A_pinned_key_needs_its_issuer_and_excludes_an_authority()
    {
        Assert.Contains("BRK1072", Ids(new ResourceServerOptions { KeyFile = "/nonexistent.pem" }));
        Assert.Contains("BRK1072", Ids(new ResourceServerOptions { Authority = "https://idp.example.org", KeyFile = "/nonexistent.pem", Issuer = "x" }));
        Assert.Contains("BRK1072", Ids(new ResourceServerOptions { Authority = "https://broker.example.org/" }));
        var noIssuer = Production();
        noIssuer.Operators.Authority = "";
        Assert.Contains("BRK1072", Ids(new ResourceServerOptions(), noIssuer));
    }

    [Theory]
    [InlineData(0, 10)]
    [InlineData(5, 0)]
    [InlineData(11, 10)]
    public void Stream_caps_must_be_positive_and_consistent(int perCaller, int total)
    {
        Assert.Contains("BRK1073", Ids(new ResourceServerOptions { MaxStreamsPerCaller = perCaller, MaxStreams = total }));
    }

    [Fact]
    public async Task A_pinned_key_issuer_admits_its_tokens_and_nothing_else()
    {
        using var trust = new TestTrustDomain("example.org");
        using var pki = TestPki.Create("example.org");
        var policy = Path.Combine(trust.Directory, "policy.yaml");
        await File.WriteAllTextAsync(policy, BrokerScenario.Policy(trust.WriteJwksFile(), pki.WriteRootBundle()));
        using var issuer = new TestResourceServerIssuer(trust.Directory);
        await using var host = await BrokerTestHost.StartAsync(new BrokerTestHostOptions { PolicyPath = policy, Settings = issuer.Settings });
        using var channel = GrpcChannel.ForAddress(host.GrpcAddress);
        var client = new RevocationService.RevocationServiceClient(channel);
        Metadata Bearer(string token) => new() { { "authorization", "Bearer " + token } };

        var answer = await client.IntrospectAsync(new IntrospectRequest { Token = "a.b.c" }, Bearer(issuer.Token()));
        Assert.False(answer.Active);

        var wrongAudience = await Assert.ThrowsAsync<RpcException>(async () => await client.IntrospectAsync(new IntrospectRequest { Token = "a.b.c" }, Bearer(issuer.Token(audience: "broker-admin"))));
        Assert.Equal("RESOURCE_SERVER_TOKEN_INVALID", BrokerRefusal.From(wrongAudience).Reason);
        using var other = new TestResourceServerIssuer(Directory.CreateTempSubdirectory("broker-rs-other-").FullName);
        var otherKey = await Assert.ThrowsAsync<RpcException>(async () => await client.IntrospectAsync(new IntrospectRequest { Token = "a.b.c" }, Bearer(other.Token())));
        Assert.Equal("RESOURCE_SERVER_TOKEN_INVALID", BrokerRefusal.From(otherKey).Reason);
    }
}
