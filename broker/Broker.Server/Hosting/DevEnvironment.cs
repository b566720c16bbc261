using System.Security.Cryptography;
using System.Text.Json;
using Broker.Core.Signing;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Server.Hosting;

/// <summary>
/// --dev: writes a dev trust domain (its private key, so brokerctl can mint JWT-SVIDs), a
/// sample policy and a manifest into a local folder, and points the broker at them. Existing
/// files are kept, so edits to the dev policy survive restarts.
/// </summary>
public static class DevEnvironment
{
    public const string TrustDomain = "dev.local";
    public const string ManifestFile = "dev.json";
    public const int DefaultGrpcPort = 5080;
    public const int DefaultHttpPort = 5081;

    public static DevManifest Prepare(BrokerOptions options, int grpcPort, int httpPort)
    {
        var root = Path.GetFullPath(options.DevDirectory);
        var trustDir = Path.Combine(root, "trust");
        Directory.CreateDirectory(trustDir);

        var keyPath = Path.Combine(trustDir, TrustDomain + ".key.pem");
        var jwksPath = Path.Combine(trustDir, TrustDomain + ".jwks");
        WriteKeyIfMissing(keyPath);

        var trustKey = SigningKey.FromPemFile(keyPath, DateTimeOffset.MinValue);
        File.WriteAllBytes(jwksPath, JwksWriter.Write([SpiffeBundleKey(trustKey.PublicJwk)]));

        // The token-signing key lives in the dev folder too, so dev nodes started on one folder
        // (and one Redis) form a cluster whose tokens every node can check.
        var signingKeyPath = Path.Combine(trustDir, "broker-signing.key.pem");
        WriteKeyIfMissing(signingKeyPath);
        if (options.Signing.Keys.Count == 0)
        {
            options.Signing.Keys.Add(new SigningKeySettings { Path = signingKeyPath });
        }

        var operatorKeyPath = Path.Combine(trustDir, "dev-operator.key.pem");
        WriteKeyIfMissing(operatorKeyPath);

        var operatorKey = SigningKey.FromPemFile(operatorKeyPath, DateTimeOffset.MinValue);
        options.Operators.DevSigningKeyFile = operatorKeyPath;

        // Audit checkpoints get their own key, never the token-signing one; the public half is
        // what `brokerctl audit verify --checkpoint-key` pins.
        var checkpointKeyPath = Path.Combine(trustDir, "audit-checkpoint.key.pem");
        if (!File.Exists(checkpointKeyPath))
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            File.WriteAllText(checkpointKeyPath, key.ExportPkcs8PrivateKeyPem());
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(checkpointKeyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }

            File.WriteAllText(Path.Combine(trustDir, "audit-checkpoint.pub.pem"), key.ExportSubjectPublicKeyInfoPem());
        }

        options.Audit.CheckpointKeyPath = string.IsNullOrEmpty(options.Audit.CheckpointKeyPath) ? checkpointKeyPath : options.Audit.CheckpointKeyPath;

        var policyPath = Path.Combine(root, "policy.yaml");
        if (!File.Exists(policyPath))
        {
            File.WriteAllText(policyPath, SamplePolicy);
        }

        var issuer = $"http://127.0.0.1:{httpPort}";
        options.Issuer = string.IsNullOrEmpty(options.Issuer) ? issuer : options.Issuer;
        options.Audience = string.IsNullOrEmpty(options.Audience) ? $"spiffe://{TrustDomain}/broker" : options.Audience;
        if (!string.IsNullOrEmpty(options.DevPostgres))
        {
            policyPath = DevPostgres.WritePolicy(root, options.DevPostgres);
        }

        options.PolicyPath = string.IsNullOrEmpty(options.PolicyPath) ? policyPath : options.PolicyPath;
        options.AuditPath = string.IsNullOrEmpty(options.AuditPath) ? Path.Combine(root, "audit") : options.AuditPath;

        var manifest = new DevManifest(
            TrustDomain,
            options.Audience,
            $"http://127.0.0.1:{grpcPort}",
            options.Issuer,
            keyPath,
            trustKey.KeyId,
            options.PolicyPath,
            options.AuditPath,
            operatorKeyPath,
            operatorKey.KeyId,
            options.Operators.DevIssuer,
            options.Operators.Audience);
        return manifest;
    }

    /// <summary>
    /// Writes dev.json, which brokerctl --dev reads. Called once the node listens, so a node that
    /// was refused (port busy, audit folder in use) never points brokerctl at itself.
    /// </summary>
    public static void WriteManifest(string devDirectory, DevManifest manifest) =>
        File.WriteAllText(Path.Combine(Path.GetFullPath(devDirectory), ManifestFile), JsonSerializer.Serialize(manifest, DevManifest.JsonOptions));

    /// <summary>
    /// Dev mode on a shared Redis (<c>--dev --redis ...</c>): a fresh Redis has no revocation epoch,
    /// which makes every node refuse everything until an operator restores it. Dev does that
    /// step itself, once, and says so; production never does.
    /// </summary>
    public static async Task EnsureRevocationEpochAsync(IServiceProvider services)
    {
        if (services.GetService<DevManifest>() is null
            || services.GetService<StackExchange.Redis.IConnectionMultiplexer>() is not { } redis
            || services.GetService<Broker.Redis.RedisKeys>() is not { } keys)
        {
            return;
        }

        try
        {
            if (await redis.GetDatabase().StringSetAsync(keys.RevocationEpoch, Guid.NewGuid().ToString("N"), when: StackExchange.Redis.When.NotExists))
            {
                Console.WriteLine("DEV MODE: this Redis had no revocation epoch; created one (production requires `brokerctl revocations restore-epoch`).");
            }
        }
        catch (StackExchange.Redis.RedisException)
        {
            // Redis is not answering yet; the node stays stale (and says so) until it does.
        }
    }

    private static void WriteKeyIfMissing(string path)
    {
        if (File.Exists(path))
        {
            return;
        }

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        File.WriteAllText(path, key.ExportPkcs8PrivateKeyPem());
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    /// <summary>The key as a SPIFFE JWT bundle lists it (<c>use: jwt-svid</c>).</summary>
    private static JsonWebKey SpiffeBundleKey(JsonWebKey jwk) => new()
    {
        Kty = jwk.Kty,
        Crv = jwk.Crv,
        X = jwk.X,
        Y = jwk.Y,
        KeyId = jwk.KeyId,
        Use = "jwt-svid",
        Alg = jwk.Alg,
    };

    // The dev policy: any agent under spiffe://dev.local/agents/ gets read scopes to plan,
    // deploy scopes to execute, rollback scopes to recover.
    public const string SamplePolicy = """
        # Dev policy written by `broker --dev`. Edit it: the broker reloads it on save, and
        # refuses (and logs) an edit that does not validate, keeping the last good policy.
        version: 1
        trust:
          spiffe:
            - trust_domain: dev.local
              jwt_bundle_file: trust/dev.local.jwks
              refresh: 30s
        agents:
          - name: dev-agents
            match: spiffe://dev.local/agents/*
            phases:
              planning:
                scopes: [repo:read, tickets:read, logs:read]
                audiences: [https://api.dev.local]
                max_ttl: 10m
              execution:
                scopes: [repo:read, deploy:staging, deploy:prod]
                audiences: [https://api.dev.local]
                max_ttl: 5m
                risk_ceiling: medium
                on_unknown_risk: allow
                # deploy:prod waits for a person (docs/approvals.md): brokerctl approvals approve <id>.
                gated_scopes:
                  - scopes: [deploy:prod]
                    approvers: [approver]
                    validity: 15m
              recovery:
                scopes: [repo:read, deploy:rollback]
                audiences: [https://api.dev.local]
                max_ttl: 5m
        # Runtime risk (docs/risk.md): a local runtime-protection service reports as
        # spiffe://dev.local/runtime-protection. Planning allows up to high risk, execution up to
        # medium; a critical signal revokes the agent's tokens and freezes it until cleared.
        # Dev only: execution proceeds while no signal is known (production default: deny).
        signals:
          sources: [spiffe://dev.local/runtime-protection]
          containment: critical

        """;
}

/// <summary>
/// What --dev set up, for brokerctl and for people: read from .dev/dev.json. The operator key
/// signs dev operator tokens (all roles) so brokerctl's admin commands work out of the box.
/// </summary>
public sealed record DevManifest(
    string TrustDomain,
    string Audience,
    string GrpcAddress,
    string Issuer,
    string TrustKeyFile,
    string TrustKeyId,
    string PolicyFile,
    string AuditFile,
    string OperatorKeyFile,
    string OperatorKeyId,
    string OperatorIssuer,
    string OperatorAudience)
{
    public static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
}
