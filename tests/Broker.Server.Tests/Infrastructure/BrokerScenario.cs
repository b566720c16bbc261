using System.Security.Cryptography.X509Certificates;
using Broker.Client;
using Broker.Testing;
using Broker.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Broker.Server.Tests.Infrastructure;

/// <summary>
/// A trust domain, a policy on disk and one broker node using them: the world an integration
/// test acts in. With a Redis configuration the node runs in production mode.
/// </summary>
public sealed class BrokerScenario : IAsyncDisposable
{
    public const string Audience = "spiffe://example.org/broker";
    public const string ResourceAudience = "https://api.example.org";

    private BrokerScenario(TestTrustDomain trust, TestPki pki, string policyPath, BrokerTestHost host, X509Certificate2? serverCertificate, TestOperatorIdp operators)
    {
        Operators = operators;
        Trust = trust;
        Pki = pki;
        PolicyPath = policyPath;
        Host = host;
        ServerCertificate = serverCertificate;
        Channel = host.CreateChannel(trustedServerCertificate: serverCertificate);
        Client = new CredentialService.CredentialServiceClient(Channel);
        Admin = new AdminService.AdminServiceClient(Channel);
    }

    public TestOperatorIdp Operators { get; }

    /// <summary>The signing key every node of this scenario's cluster shares.</summary>
    public string SigningKeyFile { get; private init; } = "";

    public AdminService.AdminServiceClient Admin { get; }

    /// <summary>Call metadata carrying an operator token with <paramref name="roles"/>.</summary>
    public Metadata As(string subject, params string[] roles)
    {
        var token = OperatorTokens is not null
            ? OperatorTokens(subject, roles)
            : Host.Services.GetService(typeof(Broker.Server.Hosting.DevManifest)) is Broker.Server.Hosting.DevManifest dev
                ? DevOperatorToken(dev, subject, roles)
                : Operators.Token(subject, roles);
        return new Metadata { { "authorization", "Bearer " + token } };
    }

    /// <summary>Mints the operator tokens <see cref="As"/> sends when the node trusts operator keys instead of the test IdP.</summary>
    public Func<string, string[], string>? OperatorTokens { get; private init; }

    /// <summary>Configuration every node of this scenario's cluster gets (e.g. <c>Broker:RevocationMinReplicas</c>).</summary>
    public IReadOnlyDictionary<string, string?>? Settings { get; private init; }

    /// <summary>
    /// Another node of this scenario's cluster: same Redis keyspace, policy, signing key, issuer,
    /// operator IdP and settings, with whatever <paramref name="adjust"/> changes for this node.
    /// </summary>
    public Task<BrokerTestHost> StartPeerAsync(string redisConfiguration, string redisPrefix, Func<BrokerTestHostOptions, BrokerTestHostOptions>? adjust = null)
    {
        var options = new BrokerTestHostOptions
        {
            Settings = Settings,
            PolicyPath = PolicyPath,
            Audience = Audience,
            RedisConfiguration = redisConfiguration,
            RedisKeyPrefix = redisPrefix,
            OperatorAuthority = Operators.Issuer,
            ResourceServerToken = Operators.ResourceServerToken,
            SigningKeyFiles = [SigningKeyFile],
            Issuer = Host.Issuer,
        };
        return BrokerTestHost.StartAsync(adjust is null ? options : adjust(options));
    }

    /// <summary>Revokes with a responder token, returning what the broker recorded.</summary>
    public async Task<RevokeResponse> RevokeAsync(string reason, params Broker.V1.RevocationSelector[] selectors)
    {
        var request = new RevokeRequest { Reason = reason };
        request.Selectors.AddRange(selectors);
        return await Admin.RevokeAsync(request, As("alice", "responder"));
    }

    public TestTrustDomain Trust { get; }

    public TestPki Pki { get; }

    public string PolicyPath { get; }

    public BrokerTestHost Host { get; }

    public X509Certificate2? ServerCertificate { get; }

    public GrpcChannel Channel { get; }

    public CredentialService.CredentialServiceClient Client { get; }

    /// <param name="policy">Writes the policy from the JWKS and X.509 bundle paths; null means <see cref="Policy"/>.</param>
    /// <param name="operatorTokens">With <c>Broker:Operators:KeyFile</c> in <paramref name="settings"/>: mints the operator tokens the node trusts.</param>
    public static async Task<BrokerScenario> StartAsync(string? redisConfiguration = null, bool tls = false, string? redisPrefix = null, IReadOnlyDictionary<string, string?>? settings = null, Func<string, string, string>? policy = null, Func<string, string[], string>? operatorTokens = null)
    {
        var trust = new TestTrustDomain("example.org");
        var pki = TestPki.Create("example.org");
        var jwks = trust.WriteJwksFile();
        var bundle = pki.WriteRootBundle();
        var policyPath = Path.Combine(trust.Directory, "policy.yaml");
        await File.WriteAllTextAsync(policyPath, (policy ?? Policy)(jwks, bundle));
        var serverCertificate = tls ? pki.IssueServerCertificate() : null;
        var operators = await TestOperatorIdp.StartAsync();
        var signingKey = Path.Combine(trust.Directory, "broker-signing.pem");
        using (var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256))
        {
            await File.WriteAllTextAsync(signingKey, key.ExportPkcs8PrivateKeyPem());
        }

        var host = await BrokerTestHost.StartAsync(new BrokerTestHostOptions
        {
            SigningKeyFiles = [signingKey],
            OperatorAuthority = operators.Issuer,
            ResourceServerToken = redisConfiguration is null ? null : operators.ResourceServerToken,
            PolicyPath = policyPath,
            Audience = Audience,
            RedisConfiguration = redisConfiguration,
            RedisKeyPrefix = redisPrefix ?? "broker:",
            TlsCertificate = serverCertificate,
            Settings = settings,
        });
        var scenario = new BrokerScenario(trust, pki, policyPath, host, serverCertificate, operators) { SigningKeyFile = signingKey, Settings = settings, OperatorTokens = operatorTokens };
        if (redisConfiguration is not null)
        {
            await scenario.EnsureEpochAsync();
        }

        return scenario;
    }

    /// <summary>A new Redis keyspace has no revocation epoch: restore it the way an operator would on day one.</summary>
    public async Task EnsureEpochAsync()
    {
        var health = new Grpc.Health.V1.Health.HealthClient(Channel);
        var status = await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest());
        if (status.Status != Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving)
        {
            var restored = await Admin.RestoreRevocationEpochAsync(new RestoreRevocationEpochRequest { Reason = "new cluster" }, As("alice", "responder"));

            // The restore revokes everything minted up to the end of its second (iat is in whole
            // seconds); tokens a test mints must come after that.
            var cutoff = restored.Cutoff.Selector.IssuedBefore.Time.ToDateTimeOffset();
            var wait = cutoff - DateTimeOffset.UtcNow + TimeSpan.FromMilliseconds(20);
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait);
            }
        }
    }

    private static string DevOperatorToken(Broker.Server.Hosting.DevManifest dev, string subject, string[] roles)
    {
        using var key = System.Security.Cryptography.ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(dev.OperatorKeyFile));
        var now = DateTimeOffset.UtcNow;
        var header = new System.Text.Json.Nodes.JsonObject { ["alg"] = "ES256", ["kid"] = dev.OperatorKeyId, ["typ"] = "JWT" };
        var payload = new System.Text.Json.Nodes.JsonObject
        {
            ["iss"] = dev.OperatorIssuer,
            ["aud"] = dev.OperatorAudience,
            ["sub"] = subject,
            ["iat"] = now.ToUnixTimeSeconds(),
            ["exp"] = now.AddMinutes(10).ToUnixTimeSeconds(),
            ["roles"] = new System.Text.Json.Nodes.JsonArray(roles.Select(r => (System.Text.Json.Nodes.JsonNode)r).ToArray()),
        };
        var signingInput = TestTrustDomain.Encode(header.ToJsonString()) + "." + TestTrustDomain.Encode(payload.ToJsonString());
        var signature = key.SignData(System.Text.Encoding.ASCII.GetBytes(signingInput), System.Security.Cryptography.HashAlgorithmName.SHA256);
        return signingInput + "." + System.Buffers.Text.Base64Url.EncodeToString(signature);
    }

    public static string Policy(string jwksPath, string x509BundlePath) => $"""
        version: 1
        trust:
          spiffe:
            - trust_domain: example.org
              jwt_bundle_file: {jwksPath}
              x509_bundle_file: {x509BundlePath}
              refresh: 30s
        agents:
          - name: planners
            match: spiffe://example.org/agents/*
            phases:
              planning:
                scopes: [repo:read, tickets:read]
                audiences: [{ResourceAudience}]
                max_ttl: 10m
              execution:
                scopes: [repo:read, deploy:staging]
                audiences: [{ResourceAudience}]
                max_ttl: 5m
        """;

    public string Svid(string path = "/agents/planner", TimeSpan? lifetime = null) =>
        Trust.MintSvid(Trust.SpiffeId(path), Audience, DateTimeOffset.UtcNow, lifetime ?? TimeSpan.FromMinutes(5));

    public IssueCredentialRequest Request(string? svid = null, string task = "task-1", Phase phase = Phase.Planning, params string[] scopes) => new()
    {
        TaskId = task,
        Phase = phase,
        Scopes = { scopes.Length == 0 ? ["repo:read"] : scopes },
        Audience = ResourceAudience,
        Attestation = new AttestationProof { JwtSvid = svid ?? Svid() },
    };

    /// <summary>Calls IssueCredential expecting a refusal, and returns it.</summary>
    public async Task<BrokerRefusal> RefusedAsync(IssueCredentialRequest request)
    {
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await Client.IssueCredentialAsync(request));
        return BrokerRefusal.From(ex);
    }

    /// <summary>Every audit record this node wrote so far, oldest first, across segments.</summary>
    public async Task<string[]> AuditLinesAsync()
    {
        var lines = new List<string>();
        foreach (var segment in Broker.Core.Audit.AuditFiles.All(Host.AuditPath))
        {
            await using var stream = new FileStream(segment.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            lines.AddRange((await reader.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }

        return [.. lines];
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await Host.DisposeAsync();
        await Operators.DisposeAsync();
        Trust.Dispose();
        Pki.Dispose();
    }
}
