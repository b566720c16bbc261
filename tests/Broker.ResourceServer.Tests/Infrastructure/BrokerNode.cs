using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Broker.Server.Hosting;
using Broker.Testing;
using Broker.V1;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Broker.ResourceServer.Tests.Infrastructure;

/// <summary>
/// One broker node in dev mode (in-memory state) on real Kestrel, registered the way the shipped
/// host is (<c>AddBroker</c>/<c>MapBroker</c>), with an attested test agent and a dev operator
/// who can revoke. Given a Redis configuration, the node keeps its state there (dev mode on a
/// shared Redis, as <c>--dev --redis</c>).
/// </summary>
public sealed class BrokerNode : IAsyncDisposable
{
    public const string BrokerAudience = "spiffe://example.org/broker";
    public const string ApiAudience = "https://api.example.org";

    private readonly WebApplication _app;
    private readonly TestTrustDomain _trust;
    private bool _stopped;

    private BrokerNode(WebApplication app, TestTrustDomain trust, int grpcPort, string issuer, string devDirectory)
    {
        _app = app;
        _trust = trust;
        GrpcPort = grpcPort;
        GrpcAddress = $"http://127.0.0.1:{grpcPort}";
        Issuer = issuer;
        ResourceServerTokenFile = Path.Combine(devDirectory, "resource-server.token");
        Channel = GrpcChannel.ForAddress(GrpcAddress, new GrpcChannelOptions
        {
            HttpHandler = new ResourceServerTokenHandler(ResourceServerTokenHandler.FromDevDirectory(devDirectory), new SocketsHttpHandler()),
        });
        Credentials = new CredentialService.CredentialServiceClient(Channel);
        Admin = new AdminService.AdminServiceClient(Channel);
        Revocations = new RevocationService.RevocationServiceClient(Channel);
    }

    public int GrpcPort { get; }

    /// <summary>The resource-server token the dev node wrote (RevocationService calls on <see cref="Channel"/> carry it).</summary>
    public string ResourceServerTokenFile { get; }

    public string GrpcAddress { get; }

    /// <summary>The issuer URL, which serves discovery and JWKS.</summary>
    public string Issuer { get; }

    public GrpcChannel Channel { get; }

    public CredentialService.CredentialServiceClient Credentials { get; }

    public AdminService.AdminServiceClient Admin { get; }

    public RevocationService.RevocationServiceClient Revocations { get; }

    /// <param name="redisConfiguration">A Redis to keep state in; null for in-memory state.</param>
    /// <param name="policy">Writes the policy from the trust domain's JWKS path; null means <see cref="Policy"/>.</param>
    public static async Task<BrokerNode> StartAsync(string? redisConfiguration = null, Func<string, string>? policy = null)
    {
        var trust = new TestTrustDomain("example.org");
        var work = Directory.CreateTempSubdirectory("broker-rs-node-").FullName;
        var policyPath = Path.Combine(work, "policy.yaml");
        await File.WriteAllTextAsync(policyPath, (policy ?? Policy)(trust.WriteJwksFile()));
        var keyPath = Path.Combine(work, "signing.pem");
        using (var key = ECDsa.Create(ECCurve.NamedCurves.nistP256))
        {
            await File.WriteAllTextAsync(keyPath, key.ExportPkcs8PrivateKeyPem());
        }

        var grpcPort = RedisServer.FreePort();
        var httpPort = RedisServer.FreePort();
        var issuer = $"http://127.0.0.1:{httpPort}";
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Broker:Dev"] = "true",
            ["Broker:DevDirectory"] = Path.Combine(work, "dev"),
            ["Broker:DevGrpcPort"] = grpcPort.ToString(CultureInfo.InvariantCulture),
            ["Broker:DevHttpPort"] = httpPort.ToString(CultureInfo.InvariantCulture),
            ["Broker:Issuer"] = issuer,
            ["Broker:Audience"] = BrokerAudience,
            ["Broker:PolicyPath"] = policyPath,
            ["Broker:AuditPath"] = Path.Combine(work, "audit.log"),
            ["Broker:Signing:Keys:0:Path"] = keyPath,
            ["Broker:Redis:Configuration"] = redisConfiguration,
            ["Broker:Redis:KeyPrefix"] = redisConfiguration is null ? null : $"rs{Guid.NewGuid():N}:",
        });
        builder.Logging.ClearProviders();
        builder.AddBroker();
        var app = builder.Build();
        app.MapBroker();
        await app.StartAsync();
        return new BrokerNode(app, trust, grpcPort, issuer, Path.Combine(work, "dev"));
    }

    public static string Policy(string jwksPath) => $"""
        version: 1
        trust:
          spiffe:
            - trust_domain: example.org
              jwt_bundle_file: {jwksPath}
              refresh: 30s
        agents:
          - name: agents
            match: spiffe://example.org/agents/*
            phases:
              planning:
                scopes: [repo:read, tickets:read]
                audiences: [{ApiAudience}]
                max_ttl: 10m
              execution:
                scopes: [repo:read, deploy:staging]
                audiences: [{ApiAudience}]
                max_ttl: 5m
        """;

    /// <summary>A JWT-SVID for <paramref name="agent"/> addressed to this broker: the proof an agent presents.</summary>
    public string Svid(string agent = "/agents/planner") =>
        _trust.MintSvid(_trust.SpiffeId(agent), BrokerAudience, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5));

    /// <summary>Issues a token to the attested agent <paramref name="agent"/>.</summary>
    public async Task<IssueCredentialResponse> IssueAsync(string task, Phase phase = Phase.Planning, string agent = "/agents/planner", params string[] scopes)
    {
        var svid = _trust.MintSvid(_trust.SpiffeId(agent), BrokerAudience, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5));
        return await Credentials.IssueCredentialAsync(new IssueCredentialRequest
        {
            TaskId = task,
            Phase = phase,
            Scopes = { scopes.Length == 0 ? ["repo:read"] : scopes },
            Audience = ApiAudience,
            Attestation = new AttestationProof { JwtSvid = svid },
        });
    }

    /// <summary>Revokes as a dev operator with the responder role.</summary>
    public async Task<RevokeResponse> RevokeAsync(params Broker.V1.RevocationSelector[] selectors)
    {
        var request = new RevokeRequest { Reason = "resource-server test" };
        request.Selectors.AddRange(selectors);
        return await Admin.RevokeAsync(request, new Metadata { { "authorization", "Bearer " + OperatorToken("responder") } });
    }

    /// <summary>An ES256 operator token signed with the dev operator key the node wrote.</summary>
    public string OperatorToken(params string[] roles)
    {
        var dev = _app.Services.GetRequiredService<DevManifest>();
        using var key = ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(dev.OperatorKeyFile));
        var now = DateTimeOffset.UtcNow;
        var header = new JsonObject { ["alg"] = "ES256", ["kid"] = dev.OperatorKeyId, ["typ"] = "JWT" };
        var payload = new JsonObject
        {
            ["iss"] = dev.OperatorIssuer,
            ["aud"] = dev.OperatorAudience,
            ["sub"] = "dev-operator",
            ["iat"] = now.ToUnixTimeSeconds(),
            ["exp"] = now.AddMinutes(10).ToUnixTimeSeconds(),
            ["roles"] = new JsonArray([.. roles.Select(r => (JsonNode)r)]),
        };
        var signingInput = TestTrustDomain.Encode(header.ToJsonString()) + "." + TestTrustDomain.Encode(payload.ToJsonString());
        var signature = key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256);
        return signingInput + "." + System.Buffers.Text.Base64Url.EncodeToString(signature);
    }

    /// <summary>Stops the node (its streams end, its ports close).</summary>
    public async Task StopAsync()
    {
        if (_stopped)
        {
            return;
        }

        _stopped = true;
        Channel.Dispose();
        // Open revocation streams would hold a graceful stop for Kestrel's whole shutdown
        // timeout; a stopped node is what the tests want, so cut them after a moment.
        using (var grace = new CancellationTokenSource(TimeSpan.FromMilliseconds(500)))
        {
            await _app.StopAsync(grace.Token);
        }

        await _app.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _trust.Dispose();
    }
}
