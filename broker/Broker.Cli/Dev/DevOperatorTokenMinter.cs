using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Broker.Cli.Dev;

/// <summary>
/// Mints operator tokens for the dev broker's admin API with the dev operator key from
/// <c>dev.json</c>, standing in for the organisation's IdP: ES256, header <c>alg</c>,
/// <c>kid</c>, <c>typ</c> (<c>JWT</c>, never <c>at+jwt</c>, which the broker refuses as an
/// agent credential) and nothing else; claims <c>iss</c>, <c>aud</c>, <c>sub</c>, <c>iat</c>,
/// <c>exp</c>, <c>roles</c>. Written by hand, like <see cref="DevSvidMinter"/>, so no default
/// header or claim slips in.
/// </summary>
internal sealed class DevOperatorTokenMinter : IDisposable
{
    public const string DefaultOperator = "dev-operator";

    /// <summary>Every operator role, so each admin command works against the dev broker.</summary>
    public static readonly IReadOnlyList<string> AllRoles = ["responder", "approver", "iam-admin", "auditor", "telemetry-reader"];

    /// <summary>Long enough for one command, short enough that a leaked one is soon useless.</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(5);

    public const int MaxOperatorNameLength = 128;

    private readonly ECDsa _key;
    private readonly string _keyId;
    private readonly string _issuer;
    private readonly string _audience;
    private readonly TimeProvider _time;

    public DevOperatorTokenMinter(ECDsa key, string keyId, string issuer, string audience, TimeProvider time)
    {
        if (key.KeySize != 256)
        {
            throw CliException.Local("the dev operator key is not an EC P-256 key.");
        }

        _key = key;
        _keyId = keyId;
        _issuer = issuer;
        _audience = audience;
        _time = time;
    }

    /// <summary>Loads the operator key named by the manifest.</summary>
    public static DevOperatorTokenMinter FromManifest(DevManifest manifest, TimeProvider time)
    {
        if (string.IsNullOrWhiteSpace(manifest.OperatorKeyFile) || string.IsNullOrWhiteSpace(manifest.OperatorKeyId)
            || string.IsNullOrWhiteSpace(manifest.OperatorIssuer) || string.IsNullOrWhiteSpace(manifest.OperatorAudience))
        {
            throw CliException.Local(
                $"'{manifest.ManifestPath}' has no dev operator identity (operator_key_file, operator_key_id, operator_issuer, operator_audience); "
                + "restart the broker with --dev to rewrite it.");
        }

        var key = DevJws.LoadKey(manifest.OperatorKeyFile, "dev operator key");

        return new DevOperatorTokenMinter(key, manifest.OperatorKeyId, manifest.OperatorIssuer, manifest.OperatorAudience, time);
    }

    /// <summary>An operator token naming <paramref name="operatorName"/> (its <c>sub</c>) with every role.</summary>
    public string Mint(string operatorName) => Mint(operatorName, AllRoles);

    public string Mint(string operatorName, IReadOnlyList<string> roles)
    {
        if (string.IsNullOrWhiteSpace(operatorName) || operatorName.Length > MaxOperatorNameLength || operatorName.Any(char.IsControl))
        {
            throw CliException.Usage($"--as must be 1 to {MaxOperatorNameLength} characters without control characters.");
        }

        var now = _time.GetUtcNow().ToUnixTimeSeconds();
        var header = DevJws.Json(w =>
        {
            w.WriteString("alg", "ES256");
            w.WriteString("kid", _keyId);
            w.WriteString("typ", "JWT");
        });
        var claims = DevJws.Json(w =>
        {
            w.WriteString("iss", _issuer);
            w.WriteString("aud", _audience);
            w.WriteString("sub", operatorName);
            w.WriteNumber("iat", now);
            w.WriteNumber("exp", now + (long)Lifetime.TotalSeconds);
            w.WriteStartArray("roles");
            foreach (var role in roles)
            {
                w.WriteStringValue(role);
            }

            w.WriteEndArray();
        });

        return DevJws.SignEs256(_key, header, claims);
    }

    public void Dispose() => _key.Dispose();

}
