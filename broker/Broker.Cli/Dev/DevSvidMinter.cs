using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Broker.Cli.Internal;
using Broker.Core.Attestation;

namespace Broker.Cli.Dev;

/// <summary>
/// Mints JWT-SVIDs for the dev trust domain with the key the dev broker trusts. The token is
/// what SPIRE would hand a workload: ES256, header <c>alg</c>, <c>kid</c>, <c>typ</c> and
/// nothing else; claims <c>sub</c>, <c>aud</c>, <c>iat</c>, <c>exp</c>, <c>jti</c>. It is
/// written by hand, not by a token library, so no default header or claim slips in.
/// </summary>
internal sealed class DevSvidMinter : IDisposable
{
    public static readonly TimeSpan DefaultTtl = TimeSpan.FromMinutes(5);

    /// <summary>The broker's default maximum proof lifetime; a longer SVID would be refused anyway.</summary>
    public static readonly TimeSpan MaxTtl = TimeSpan.FromHours(1);

    private readonly ECDsa _key;
    private readonly string _keyId;
    private readonly string _trustDomain;
    private readonly string _audience;
    private readonly TimeProvider _time;

    public DevSvidMinter(ECDsa key, string keyId, string trustDomain, string audience, TimeProvider time)
    {
        if (key.KeySize != 256)
        {
            throw CliException.Local("the dev trust key is not an EC P-256 key.");
        }

        _key = key;
        _keyId = keyId;
        _trustDomain = trustDomain;
        _audience = audience;
        _time = time;
    }

    /// <summary>Loads the trust key named by the manifest.</summary>
    public static DevSvidMinter FromManifest(DevManifest manifest, TimeProvider time)
    {
        var key = CompactJwsWriter.LoadKey(manifest.TrustKeyFile, "dev trust key");

        return new DevSvidMinter(key, manifest.TrustKeyId, manifest.TrustDomain, manifest.Audience, time);
    }

    /// <summary>Mints a JWT-SVID for <paramref name="agent"/>, which must be a workload in the dev trust domain.</summary>
    public string Mint(string agent, TimeSpan ttl)
    {
        if (!SpiffeId.TryParse(agent, out var id, out var error))
        {
            throw CliException.Usage($"--agent is not a valid SPIFFE ID: {error}.");
        }

        if (!string.Equals(id.TrustDomain, _trustDomain, StringComparison.Ordinal))
        {
            throw CliException.Usage($"--agent must be in the dev trust domain: spiffe://{_trustDomain}/...; the dev key cannot vouch for '{id.TrustDomain}'.");
        }

        if (ttl <= TimeSpan.Zero || ttl > MaxTtl)
        {
            throw CliException.Usage($"--ttl must be more than 0 and at most {Internal.Durations.Format(MaxTtl)}.");
        }

        var now = _time.GetUtcNow().ToUnixTimeSeconds();
        var header = CompactJwsWriter.Json(w =>
        {
            w.WriteString("alg", "ES256");
            w.WriteString("kid", _keyId);
            w.WriteString("typ", "JWT");
        });
        var claims = CompactJwsWriter.Json(w =>
        {
            w.WriteString("sub", id.ToString());
            w.WriteStartArray("aud");
            w.WriteStringValue(_audience);
            w.WriteEndArray();
            w.WriteNumber("iat", now);
            w.WriteNumber("exp", now + (long)ttl.TotalSeconds);
            w.WriteString("jti", Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(16)));
        });

        return CompactJwsWriter.SignEs256(_key, header, claims);
    }

    public void Dispose() => _key.Dispose();

}
