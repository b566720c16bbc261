using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Broker.Server.Hosting;
using Broker.Server.Tests.Infrastructure;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Server.Tests.Hosting;

/// <summary>
/// How operators are trusted is checked at start: exactly one of an IdP or a key file, a key file
/// of usable public keys only with the issuer its tokens carry, and no key file where OIDC is
/// required. Each refusal has its id and names the setting.
/// </summary>
public sealed class OperatorTrustStartupTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("broker-operator-trust-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_usable_key_file_with_its_issuer_is_accepted_in_production()
    {
        var problems = Problems(operators => { operators.KeyFile = WriteJwks(Ec()); operators.Issuer = "local-operators"; });

        Assert.DoesNotContain(problems, p => p.StartsWith("BRK116", StringComparison.Ordinal) || p.StartsWith("BRK1006", StringComparison.Ordinal));
    }

    [Fact]
    public void Neither_an_authority_nor_a_key_file_is_BRK1006_naming_both()
    {
        var problem = Assert.Single(Problems(_ => { }), p => p.StartsWith("BRK1006", StringComparison.Ordinal));

        Assert.Contains("Broker:Operators:Authority", problem, StringComparison.Ordinal);
        Assert.Contains("Broker:Operators:KeyFile", problem, StringComparison.Ordinal);
    }

    public static TheoryData<string, string, string> Refusals => new()
    {
        { "both", "BRK1163", "Broker:Operators:Authority or Broker:Operators:KeyFile, not both" },
        { "missing-file", "BRK1164", "does not exist" },
        { "not-json", "BRK1164", "is not JSON" },
        { "no-keys-array", "BRK1164", "no \"keys\" array" },
        { "private-ec", "BRK1165", "private key material ('d')" },
        { "private-rsa", "BRK1165", "private key material" },
        { "empty", "BRK1166", "1 to 32 keys" },
        { "p384", "BRK1166", "EC P-256 (ES256) or RSA of 2048 bits or more (RS256)" },
        { "rsa-1024", "BRK1166", "RSA (2048+ bit)" },
        { "symmetric", "BRK1165", "private key material ('k')" },
        { "alg-mismatch", "BRK1166", "names alg 'ES384'" },
        { "no-kid", "BRK1166", "needs a kid" },
        { "duplicate-kid", "BRK1166", "repeats kid" },
        { "encryption-use", "BRK1166", "has use 'enc'" },
        { "no-issuer", "BRK1167", "Broker:Operators:Issuer is required" },
        { "broker-issuer", "BRK1167", "must not be Broker's own issuer" },
        { "issuer-without-key-file", "BRK1167", "only used with Broker:Operators:KeyFile" },
        { "require-oidc", "BRK1168", "Broker:Operators:RequireOidc" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void A_bad_operator_trust_setting_is_refused_with_its_id(string kind, string id, string says)
    {
        var problems = Problems(operators =>
        {
            operators.Issuer = "local-operators";
            operators.KeyFile = kind switch
            {
                "missing-file" => Path.Combine(_dir, "absent.jwks"),
                "not-json" => Write("keys.pem", "-----BEGIN PUBLIC KEY-----"),
                "no-keys-array" => Write("keys.json", """{"kty":"EC"}"""),
                "private-ec" => WriteJwks(Ec(includePrivate: true)),
                "private-rsa" => WriteJwks(Rsa(2048, includePrivate: true)),
                "empty" => WriteJwks(),
                "p384" => WriteJwks(Ec(ECCurve.NamedCurves.nistP384)),
                "rsa-1024" => WriteJwks(Rsa(1024)),
                "symmetric" => WriteJwks(new JsonObject { ["kty"] = "oct", ["kid"] = "s", ["k"] = "c2VjcmV0" }),
                "alg-mismatch" => WriteJwks(With(Ec(), "alg", "ES384")),
                "no-kid" => WriteJwks(Without(Ec(), "kid")),
                "duplicate-kid" => WriteJwks(With(Ec(), "kid", "k"), With(Ec(), "kid", "k")),
                "encryption-use" => WriteJwks(With(Ec(), "use", "enc")),
                "issuer-without-key-file" => "",
                _ => WriteJwks(Ec()),
            };
            switch (kind)
            {
                case "both":
                    operators.Authority = "https://idp.example.org";
                    break;
                case "no-issuer":
                    operators.Issuer = "";
                    break;
                case "broker-issuer":
                    operators.Issuer = "https://broker.example.org/";
                    break;
                case "require-oidc":
                    operators.RequireOidc = true;
                    break;
            }
        });

        Assert.Contains(problems, p => p.StartsWith(id + ": ", StringComparison.Ordinal) && p.Contains(says, StringComparison.Ordinal) && p.Contains("Broker:Operators:", StringComparison.Ordinal));
    }

    [Fact]
    public void A_key_file_is_checked_in_dev_too()
    {
        var options = new BrokerOptions { Dev = true, Operators = { KeyFile = WriteJwks(Ec(includePrivate: true)), Issuer = "local-operators" } };

        Assert.Contains(StartupValidation.Problems(options), p => p.StartsWith("BRK1165: ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_node_given_a_private_key_file_refuses_to_start_with_BRK1165()
    {
        var policy = Write("policy.yaml", "version: 1\nagents: []\n");

        var refused = await Assert.ThrowsAsync<BrokerStartupException>(() => BrokerTestHost.StartAsync(new BrokerTestHostOptions
        {
            PolicyPath = policy,
            RedisConfiguration = "127.0.0.1:1,abortConnect=false",
            Settings = new Dictionary<string, string?>
            {
                ["Broker:Operators:KeyFile"] = WriteJwks(Ec(includePrivate: true)),
                ["Broker:Operators:Issuer"] = "local-operators",
            },
        }));

        Assert.Contains(refused.Problems, p => p.StartsWith("BRK1165: Broker:Operators:KeyFile", StringComparison.Ordinal));
    }

    private static List<string> Problems(Action<OperatorOptions> configure)
    {
        var options = new BrokerOptions { Issuer = "https://broker.example.org" };
        configure(options.Operators);
        return [.. StartupValidation.Problems(options)];
    }

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, Guid.NewGuid().ToString("N") + "-" + name);
        File.WriteAllText(path, text);
        return path;
    }

    private string WriteJwks(params JsonObject[] keys) => Write("operators.jwks.json", new JsonObject { ["keys"] = new JsonArray(keys) }.ToJsonString());

    private static JsonObject Ec(ECCurve? curve = null, bool includePrivate = false)
    {
        using var key = ECDsa.Create(curve ?? ECCurve.NamedCurves.nistP256);
        var jwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(new ECDsaSecurityKey(includePrivate ? key : ECDsa.Create(key.ExportParameters(false))));
        return Json(jwk, includePrivate ? ["d"] : []);
    }

    private static JsonObject Rsa(int bits, bool includePrivate = false)
    {
        using var key = RSA.Create(bits);
        var jwk = JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(key.ExportParameters(includePrivate)));
        return Json(jwk, includePrivate ? ["d", "p", "q", "dp", "dq", "qi"] : []);
    }

    private static JsonObject Json(JsonWebKey jwk, string[] privateMembers)
    {
        var json = new JsonObject { ["kty"] = jwk.Kty, ["kid"] = Base64UrlEncoder.Encode(jwk.ComputeJwkThumbprint()) };
        foreach (var (name, value) in new[] { ("crv", jwk.Crv), ("x", jwk.X), ("y", jwk.Y), ("n", jwk.N), ("e", jwk.E) })
        {
            if (value is not null)
            {
                json[name] = value;
            }
        }

        foreach (var name in privateMembers)
        {
            json[name] = name switch
            {
                "d" => jwk.D,
                "p" => jwk.P,
                "q" => jwk.Q,
                "dp" => jwk.DP,
                "dq" => jwk.DQ,
                _ => jwk.QI,
            };
        }

        return json;
    }

    private static JsonObject With(JsonObject key, string name, string value)
    {
        key[name] = value;
        return key;
    }

    private static JsonObject Without(JsonObject key, string name)
    {
        key.Remove(name);
        return key;
    }
}
