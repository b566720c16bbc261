using Broker.Cli.Dev;
using Broker.Cli.Internal;

namespace Broker.Cli.Operators;

/// <summary>
/// Mints operator tokens for a broker's admin API, standing in for the organisation's IdP: with
/// the dev operator key from <c>dev.json</c> (<c>--dev</c>), or with a key a broker trusts through
/// <c>Broker:Operators:KeyFile</c> (<c>brokerctl operator-token</c>). ES256 or RS256, header
/// <c>alg</c>, <c>kid</c>, <c>typ</c> (<c>JWT</c>, never <c>at+jwt</c>, which the broker refuses as
/// an agent credential) and nothing else; claims <c>iss</c>, <c>aud</c>, <c>sub</c>, <c>iat</c>,
/// <c>exp</c>, <c>roles</c>. Written by hand, like <see cref="DevSvidMinter"/>, so no default
/// header or claim slips in.
/// </summary>
internal sealed class OperatorTokenMinter : IDisposable
{
    public const string DefaultOperator = "dev-operator";

    /// <summary>The audience a broker expects by default (<c>Broker:Operators:Audience</c>).</summary>
    public const string DefaultAudience = "broker-admin";

    /// <summary>Every operator role, so each admin command works against the dev broker.</summary>
    public static readonly IReadOnlyList<string> AllRoles = ["responder", "approver", "iam-admin", "auditor", "telemetry-reader"];

    /// <summary>Long enough for one command, short enough that a leaked one is soon useless.</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(5);

    /// <summary>The longest token <c>operator-token</c> mints: a working shift, not a standing credential.</summary>
    public static readonly TimeSpan MaxLifetime = TimeSpan.FromHours(12);

    public const int MaxOperatorNameLength = 128;

    private readonly OperatorSigningKey _key;
    private readonly string _keyId;
    private readonly string _issuer;
    private readonly string _audience;
    private readonly TimeProvider _time;

    public OperatorTokenMinter(OperatorSigningKey key, string keyId, string issuer, string audience, TimeProvider time)
    {
        _key = key;
        _keyId = keyId;
        _issuer = issuer;
        _audience = audience;
        _time = time;
    }

    /// <summary>Loads the dev operator key named by the manifest.</summary>
    public static OperatorTokenMinter FromManifest(DevManifest manifest, TimeProvider time)
    {
        if (string.IsNullOrWhiteSpace(manifest.OperatorKeyFile) || string.IsNullOrWhiteSpace(manifest.OperatorKeyId)
            || string.IsNullOrWhiteSpace(manifest.OperatorIssuer) || string.IsNullOrWhiteSpace(manifest.OperatorAudience))
        {
            throw CliException.Local(
                $"'{manifest.ManifestPath}' has no dev operator identity (operator_key_file, operator_key_id, operator_issuer, operator_audience); "
                + "restart the broker with --dev to rewrite it.");
        }

        return new OperatorTokenMinter(OperatorSigningKey.Load(manifest.OperatorKeyFile), manifest.OperatorKeyId, manifest.OperatorIssuer, manifest.OperatorAudience, time);
    }

    /// <summary>An operator token naming <paramref name="operatorName"/> (its <c>sub</c>) with every role.</summary>
    public string Mint(string operatorName) => Mint(operatorName, AllRoles);

    public string Mint(string operatorName, IReadOnlyList<string> roles) => Mint(operatorName, roles, Lifetime, "--as");

    /// <param name="nameOption">The option that named the operator, for the usage error.</param>
    public string Mint(string operatorName, IReadOnlyList<string> roles, TimeSpan lifetime, string nameOption)
    {
        if (string.IsNullOrWhiteSpace(operatorName) || operatorName.Length > MaxOperatorNameLength || operatorName.Any(char.IsControl))
        {
            throw CliException.Usage($"{nameOption} must be 1 to {MaxOperatorNameLength} characters without control characters.");
        }

        var now = _time.GetUtcNow().ToUnixTimeSeconds();
        var header = CompactJwsWriter.Json(w =>
        {
            w.WriteString("alg", _key.Algorithm);
            w.WriteString("kid", _keyId);
            w.WriteString("typ", "JWT");
        });
        var claims = CompactJwsWriter.Json(w =>
        {
            w.WriteString("iss", _issuer);
            w.WriteString("aud", _audience);
            w.WriteString("sub", operatorName);
            w.WriteNumber("iat", now);
            w.WriteNumber("exp", now + (long)lifetime.TotalSeconds);
            w.WriteStartArray("roles");
            foreach (var role in roles)
            {
                w.WriteStringValue(role);
            }

            w.WriteEndArray();
        });

        return _key.Sign(header, claims);
    }

    public void Dispose() => _key.Dispose();
}
