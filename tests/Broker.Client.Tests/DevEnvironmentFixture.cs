using System.Security.Cryptography;
using System.Text.Json;

namespace Broker.Client.Tests;

/// <summary>A dev folder shaped like the one <c>Broker.Server --dev</c> writes: dev.json and the trust key.</summary>
internal sealed class DevEnvironmentFixture : IDisposable
{
    public const string KeyId = "dev-trust-key-1";
    public const string Audience = "spiffe://dev.local/broker";
    public const string OperatorKeyId = "dev-operator-key-1";
    public const string OperatorIssuer = "broker-dev-operators";
    public const string OperatorAudience = "broker-admin";

    public DevEnvironmentFixture(string grpcAddress = "http://127.0.0.1:5080", bool withOperator = true)
    {
        Directory = Path.Combine(Path.GetTempPath(), "brokerctl-tests-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Path.Combine(Directory, "trust"));
        Key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var keyFile = Path.Combine(Directory, "trust", "dev.local.key.pem");
        File.WriteAllText(keyFile, Key.ExportPkcs8PrivateKeyPem());
        OperatorKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var operatorKeyFile = Path.Combine(Directory, "trust", "dev-operator.key.pem");
        File.WriteAllText(operatorKeyFile, OperatorKey.ExportPkcs8PrivateKeyPem());
        var manifest = new Dictionary<string, string>
        {
            ["trust_domain"] = "dev.local",
            ["audience"] = Audience,
            ["grpc_address"] = grpcAddress,
            ["issuer"] = "http://127.0.0.1:5081",
            ["trust_key_file"] = keyFile,
            ["trust_key_id"] = KeyId,
            ["policy_file"] = Path.Combine(Directory, "policy.yaml"),
            ["audit_file"] = Path.Combine(Directory, "audit.log"),
        };
        if (withOperator)
        {
            manifest["operator_key_file"] = operatorKeyFile;
            manifest["operator_key_id"] = OperatorKeyId;
            manifest["operator_issuer"] = OperatorIssuer;
            manifest["operator_audience"] = OperatorAudience;
        }

        File.WriteAllText(Path.Combine(Directory, "dev.json"), JsonSerializer.Serialize(manifest));
    }

    public string Directory { get; }

    public ECDsa Key { get; }

    /// <summary>The dev operator key: signs operator tokens for the admin API.</summary>
    public ECDsa OperatorKey { get; }

    public void Dispose()
    {
        Key.Dispose();
        OperatorKey.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
