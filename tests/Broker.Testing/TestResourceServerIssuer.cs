using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Broker.Testing;

/// <summary>
/// A pinned-key issuer of resource-server tokens (<c>Broker:ResourceServers:KeyFile</c> and
/// <c>Issuer</c>), for brokers that have no IdP to mint client-credential tokens: an EC P-256
/// key generated at run time, its public half written where the broker reads it.
/// </summary>
public sealed class TestResourceServerIssuer : IDisposable
{
    public const string DefaultIssuer = "https://resource-server-issuer.example.org";

    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public TestResourceServerIssuer(string directory, string issuer = DefaultIssuer)
    {
        Issuer = issuer;
        PublicKeyFile = Path.Combine(directory, "resource-server-issuer.pub.pem");
        File.WriteAllText(PublicKeyFile, _key.ExportSubjectPublicKeyInfoPem());
    }

    public string Issuer { get; }

    public string PublicKeyFile { get; }

    /// <summary>The broker settings that trust this issuer.</summary>
    public IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Broker:ResourceServers:KeyFile"] = PublicKeyFile,
        ["Broker:ResourceServers:Issuer"] = Issuer,
    };

    /// <summary>A resource-server token for <paramref name="subject"/> (default audience and role unless told).</summary>
    public string Token(string subject = "test-resource-server", string audience = ResourceServerTokenHandler.Audience, string role = ResourceServerTokenHandler.Role, TimeSpan? lifetime = null)
    {
        var now = DateTimeOffset.UtcNow;
        var header = new JsonObject { ["alg"] = "ES256", ["typ"] = "JWT" };
        var payload = new JsonObject
        {
            ["iss"] = Issuer,
            ["aud"] = audience,
            ["sub"] = subject,
            ["iat"] = now.ToUnixTimeSeconds(),
            ["exp"] = (now + (lifetime ?? TimeSpan.FromMinutes(10))).ToUnixTimeSeconds(),
            ["roles"] = new JsonArray(role),
        };
        var input = TestTrustDomain.Encode(header.ToJsonString()) + "." + TestTrustDomain.Encode(payload.ToJsonString());
        return input + "." + System.Buffers.Text.Base64Url.EncodeToString(_key.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256));
    }

    public void Dispose() => _key.Dispose();
}
