using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Jose;

/// <summary>A DPoP proof (RFC 9449) that passed every stateless check; replay and nonce are the caller's.</summary>
/// <param name="Jkt">RFC 7638 thumbprint of the proof's key: what <c>cnf.jkt</c> binds.</param>
/// <param name="JwtId">The proof's <c>jti</c>, to be accepted once.</param>
/// <param name="AcceptedUntil">When this proof stops being accepted; a replay record must live at least this long.</param>
/// <param name="Nonce">The server nonce the proof carries, if any.</param>
/// <param name="PublicJwk">The proof's public key as JSON.</param>
public sealed record DpopProof(string Jkt, string JwtId, DateTimeOffset IssuedAt, DateTimeOffset AcceptedUntil, string? Nonce, string PublicJwk);

/// <summary>Why a DPoP proof was refused; <see cref="Reason"/> is a stable code (docs/errors.md).</summary>
public sealed class DpopProofException(string reason, string message) : Exception(message)
{
    public string Reason { get; } = reason;
}

/// <summary>Reason codes of DPoP refusals, the same at the broker and in the resource-server SDK.</summary>
public static class DpopReasons
{
    /// <summary>Not a well-formed, correctly signed <c>dpop+jwt</c> with the required claims.</summary>
    public const string ProofInvalid = "DPOP_PROOF_INVALID";

    /// <summary><c>htm</c> or <c>htu</c> names another request.</summary>
    public const string TargetMismatch = "DPOP_PROOF_TARGET_MISMATCH";

    /// <summary><c>iat</c> is outside the accepted window.</summary>
    public const string Stale = "DPOP_PROOF_STALE";

    /// <summary>This proof's <c>jti</c> was already used.</summary>
    public const string Replayed = "DPOP_PROOF_REPLAYED";

    /// <summary>The server requires a current nonce of its own (answered <c>use_dpop_nonce</c>).</summary>
    public const string NonceRequired = "DPOP_NONCE_REQUIRED";

    /// <summary>The proof is signed by another key than the token is bound to.</summary>
    public const string KeyMismatch = "DPOP_KEY_MISMATCH";

    /// <summary><c>ath</c> is missing or is not the hash of the presented access token.</summary>
    public const string AccessTokenHashMismatch = "DPOP_ATH_MISMATCH";

    /// <summary>More than one <c>DPoP</c> header, or a bound token presented without a proof.</summary>
    public const string ProofMissing = "DPOP_PROOF_MISSING";
}

/// <summary>
/// Checks a DPoP proof (RFC 9449 section 4.3) with the same strict compact-JWS reading as every
/// other JWS Broker accepts and the library's signature check against the key in the proof's own
/// header: <c>typ dpop+jwt</c>, an asymmetric algorithm matching the key, a public key only,
/// <c>jti</c>, <c>htm</c> and <c>htu</c> naming this request, and <c>iat</c> no more than the
/// clock skew ahead and no more than <see cref="ProofLifetime"/> plus the skew behind.
/// </summary>
public sealed class DpopProofReader
{
    /// <summary>How long after its <c>iat</c> a proof is accepted (plus the clock skew).</summary>
    public static readonly TimeSpan ProofLifetime = TimeSpan.FromSeconds(60);

    /// <summary>Largest accepted proof (an RSA-4096 key in the header fits several times over).</summary>
    public const int MaxProofLength = 8 * 1024;

    /// <summary>Longest accepted <c>jti</c> or <c>nonce</c> (they become parts of store keys).</summary>
    public const int MaxValueLength = 256;

    /// <summary>The algorithms accepted (<c>dpop_signing_alg_values_supported</c>).</summary>
    public static readonly IReadOnlyList<string> Algorithms = ["ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"];

    private readonly TimeSpan _clockSkew;
    private readonly JsonWebTokenHandler _handler = new() { MaximumTokenSizeInBytes = MaxProofLength, MapInboundClaims = false };

    public DpopProofReader(TimeSpan clockSkew) => _clockSkew = clockSkew;

    /// <param name="proof">The <c>DPoP</c> header value.</param>
    /// <param name="method">The request's HTTP method (<c>htm</c>).</param>
    /// <param name="target">The request's URI; query and fragment are ignored (<c>htu</c>).</param>
    /// <param name="now">The verifier's clock.</param>
    /// <param name="accessToken">At a resource server, the access token presented with the proof (<c>ath</c> must be its hash); null at the token endpoint.</param>
    public async ValueTask<DpopProof> ReadAsync(string proof, string method, Uri target, DateTimeOffset now, string? accessToken = null)
    {
        if (string.IsNullOrEmpty(proof) || proof.Length > MaxProofLength)
        {
            throw Invalid($"The DPoP proof is empty or larger than {MaxProofLength} bytes.");
        }

        JsonElement header, payload;
        try
        {
            var (h, p, s) = CompactJws.Split(proof, "DPoP proof");
            header = CompactJws.ReadObject(proof.AsSpan(h), "DPoP proof header");
            payload = CompactJws.ReadObject(proof.AsSpan(p), "DPoP proof payload");
            if (proof.AsSpan(s).IsEmpty || !CompactJws.IsCanonicalBase64Url(proof.AsSpan(s)))
            {
                throw new JoseFormatException("DPoP proof has no valid signature segment");
            }
        }
        catch (JoseFormatException e)
        {
            throw Invalid(e.Message + ".");
        }

        var (alg, jwk, jwkJson) = ReadHeader(header);
        var jti = RequiredString(payload, "jti");
        var htm = RequiredString(payload, "htm");
        var htu = RequiredString(payload, "htu");
        var nonce = OptionalString(payload, "nonce");
        if (jti.Length > MaxValueLength || jti.Any(char.IsControl) || nonce is { Length: > MaxValueLength })
        {
            throw Invalid($"The DPoP proof's jti and nonce must be at most {MaxValueLength} printable characters.");
        }

        if (!payload.TryGetProperty("iat", out var iatElement) || iatElement.ValueKind != JsonValueKind.Number || !iatElement.TryGetInt64(out var iatSeconds)
            || iatSeconds < 0 || iatSeconds > DateTimeOffset.MaxValue.ToUnixTimeSeconds() / 2)
        {
            throw Invalid("The DPoP proof needs an integer iat.");
        }

        var parameters = SignatureOnlyValidation.For(jwk, [alg], requireExpiration: false);
        parameters.TryAllIssuerSigningKeys = true;
        parameters.ValidTypes = ["dpop+jwt"];
        var signed = await _handler.ValidateTokenAsync(proof, parameters);
        if (!signed.IsValid)
        {
            // No library text reaches the caller.
            throw Invalid("The DPoP proof's signature does not verify with the key in its header.");
        }

        if (!string.Equals(htm, method, StringComparison.Ordinal) || !SameTarget(htu, target))
        {
            throw new DpopProofException(DpopReasons.TargetMismatch, "The DPoP proof's htm and htu must name this request's method and URI.");
        }

        var issuedAt = DateTimeOffset.FromUnixTimeSeconds(iatSeconds);
        var acceptedUntil = issuedAt + ProofLifetime + _clockSkew;
        if (issuedAt > now + _clockSkew || now > acceptedUntil)
        {
            throw new DpopProofException(DpopReasons.Stale, $"The DPoP proof's iat must be within {(int)ProofLifetime.TotalSeconds}s of now (clock skew {(int)_clockSkew.TotalSeconds}s); make a new proof for each request.");
        }

        if (accessToken is not null)
        {
            var expected = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(accessToken)));
            var ath = OptionalString(payload, "ath");
            if (ath is null || !CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(ath), Encoding.ASCII.GetBytes(expected)))
            {
                throw new DpopProofException(DpopReasons.AccessTokenHashMismatch, "The DPoP proof's ath must be the SHA-256 hash of the access token it is sent with.");
            }
        }

        return new DpopProof(PublicJwk.Thumbprint(jwk), jti, issuedAt, acceptedUntil, nonce, jwkJson);
    }

    /// <summary>alg, typ and jwk only: kid, jku, x5u, x5c, crit and the rest are refused, the key is never fetched or looked up.</summary>
    private static (string Alg, JsonWebKey Key, string Json) ReadHeader(JsonElement header)
    {
        string? alg = null, typ = null;
        JsonElement? key = null;
        foreach (var member in header.EnumerateObject())
        {
            switch (member.Name)
            {
                case "alg" when member.Value.ValueKind == JsonValueKind.String:
                    alg = member.Value.GetString();
                    break;
                case "typ" when member.Value.ValueKind == JsonValueKind.String:
                    typ = member.Value.GetString();
                    break;
                case "jwk" when member.Value.ValueKind == JsonValueKind.Object:
                    key = member.Value;
                    break;
                default:
                    throw Invalid("The DPoP proof header may carry only alg, typ and jwk.");
            }
        }

        // RFC 9449 section 4.2: explicit typing keeps other JWTs from passing as proofs.
        if (typ != "dpop+jwt")
        {
            throw Invalid("The DPoP proof header must have typ dpop+jwt.");
        }

        if (alg is null || !Algorithms.Contains(alg))
        {
            throw Invalid($"The DPoP proof must be signed with one of {string.Join(", ", Algorithms)}.");
        }

        if (key is not { } jwkElement)
        {
            throw Invalid("The DPoP proof header must carry the public key (jwk).");
        }

        var json = jwkElement.GetRawText();
        var jwk = PublicJwk.TryRead(json, out var problem) ?? throw Invalid($"The DPoP proof's jwk {problem}.");
        var fits = alg[0] == 'E'
            ? jwk.Kty == "EC" && jwk.Crv == alg switch { "ES256" => "P-256", "ES384" => "P-384", _ => "P-521" }
            : jwk.Kty == "RSA";
        if (!fits)
        {
            throw Invalid($"The DPoP proof's jwk does not fit alg {alg}.");
        }

        return (alg, jwk, json);
    }

    /// <summary>RFC 9449 section 4.3 (9): the same scheme, host, port and path; query and fragment ignored.</summary>
    private static bool SameTarget(string htu, Uri target) =>
        Uri.TryCreate(htu, UriKind.Absolute, out var claimed)
        && claimed.Scheme is "https" or "http"
        && string.IsNullOrEmpty(claimed.UserInfo)
        && Uri.Compare(claimed, target, UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped, StringComparison.Ordinal) == 0;

    private static string RequiredString(JsonElement payload, string name) =>
        OptionalString(payload, name) ?? throw Invalid($"The DPoP proof needs a string {name}.");

    private static string? OptionalString(JsonElement payload, string name)
    {
        if (!payload.TryGetProperty(name, out var value))
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } text
            ? text
            : throw Invalid($"The DPoP proof's {name} must be a non-empty string.");
    }

    private static DpopProofException Invalid(string message) => new(DpopReasons.ProofInvalid, message);
}
