using System.Security.Cryptography;
using Broker.Core.Issuance;
using Broker.Core.Signing;
using Broker.Revocation;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Core.Tests.Issuance;

/// <summary>
/// The minter writes its compact JWS itself; IdentityModel's descriptor path is the reference it
/// must match byte for byte in header and payload (member order, escaping, times), and its
/// signature must verify with the key's public half.
/// </summary>
public sealed class TokenMinterTests
{
    private const string Issuer = "https://broker.example.org";
    private static readonly DateTimeOffset IssuedAt = new(2026, 12, 3, 9, 0, 0, TimeSpan.Zero);

    public static TheoryData<string> Shapes => ["bearer", "dpop", "mtls-and-dpop", "approved", "delegated-once", "delegated-thrice", "escaped-text", "fractional-expiry", "one-scope"];

    [Theory]
    [MemberData(nameof(Shapes))]
    public async Task Token_is_the_header_and_payload_the_library_writes_and_verifies(string shape)
    {
        var key = SigningKey.Generate(DateTimeOffset.MinValue);
        var claims = ClaimsFor(shape);

        var token = Minter(key).Mint(claims);
        var reference = ReferenceMint(key, claims);

        Assert.Equal(SignedPart(reference), SignedPart(token));
        Assert.True(await VerifiesAsync(token, key), "the minted token's signature does not verify");
    }

    [Fact]
    public async Task A_p384_key_signs_es384_tokens_that_verify()
    {
        var key = SigningKey.Create(ECDsa.Create(ECCurve.NamedCurves.nistP384), DateTimeOffset.MinValue);
        var claims = ClaimsFor("bearer");

        var token = Minter(key).Mint(claims);

        Assert.Equal(SignedPart(ReferenceMint(key, claims)), SignedPart(token));
        Assert.True(await VerifiesAsync(token, key), "the ES384 token's signature does not verify");
    }

    [Fact]
    public void Each_token_signs_with_the_key_active_at_its_issue_time()
    {
        var first = SigningKey.Generate(DateTimeOffset.MinValue);
        var next = SigningKey.Generate(IssuedAt.AddHours(1));
        var minter = new TokenMinter(new SigningKeyRing([first, next], TimeSpan.FromHours(1), TimeSpan.FromMinutes(10), TimeSpan.FromMinutes(1)), Issuer);

        var before = new JsonWebToken(minter.Mint(ClaimsFor("bearer")));
        var after = new JsonWebToken(minter.Mint(ClaimsFor("bearer") with { IssuedAt = IssuedAt.AddHours(1), ExpiresAt = IssuedAt.AddHours(1).AddMinutes(5) }));
        var beforeAgain = new JsonWebToken(minter.Mint(ClaimsFor("bearer")));

        Assert.Equal([first.KeyId, next.KeyId, first.KeyId], new[] { before.Kid, after.Kid, beforeAgain.Kid });
    }

    private static TokenMinter Minter(SigningKey key) =>
        new(new SigningKeyRing([key], TimeSpan.FromHours(1), TimeSpan.FromMinutes(10), TimeSpan.FromMinutes(1)), Issuer);

    private static TokenClaims ClaimsFor(string shape)
    {
        var claims = new TokenClaims(
            "26g14WR5hegKK-Zi6XLc2A",
            "spiffe://example.org/agents/a",
            "https://api.example.org",
            ["repo:read", "tickets:read", "deploy:staging"],
            "task-42",
            TaskPhase.Execution,
            "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            IssuedAt,
            IssuedAt.AddMinutes(10),
            null,
            null);
        return shape switch
        {
            "bearer" => claims,
            "dpop" => claims with { ConfirmationJkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" },
            "mtls-and-dpop" => claims with { ConfirmationJkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", ConfirmationX5t = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" },
            "approved" => claims with { ApprovalId = "apr_7Jk2" },
            "delegated-once" => claims with { Delegation = new DelegationChain(claims.Subject, ["spiffe://example.org/agents/b"], ["parent-jti"], TaskPhase.Planning) },
            "delegated-thrice" => claims with
            {
                Delegation = new DelegationChain(
                    claims.Subject,
                    ["spiffe://example.org/agents/d", "spiffe://example.org/agents/c", "spiffe://example.org/agents/b"],
                    ["jti-c", "jti-b", "jti-a"],
                    TaskPhase.Execution),
            },
            // Task ids may carry any visible character: the escaping must match the library's.
            "escaped-text" => claims with { TaskId = "tâche+<1>&'\"\\日本", Audience = "https://api.example.org/?a=1&b=<2>" },
            "fractional-expiry" => claims with { ExpiresAt = IssuedAt.AddSeconds(299.75) },
            "one-scope" => claims with { Scopes = ["repo:read"] },
            _ => throw new ArgumentOutOfRangeException(nameof(shape)),
        };
    }

    /// <summary>The token as JsonWebTokenHandler writes it from a descriptor and a claims dictionary.</summary>
    private static string ReferenceMint(SigningKey key, TokenClaims claims)
    {
        var payload = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            [JwtRegisteredClaimNames.Sub] = claims.Subject,
            [JwtRegisteredClaimNames.Jti] = claims.TokenId,
            ["client_id"] = claims.Delegation?.Actors[0] ?? claims.Subject,
            ["scope"] = string.Join(' ', claims.Scopes),
            ["task"] = claims.TaskId,
            ["phase"] = claims.Phase.ToWire(),
            ["sid"] = ReferenceSessionId(claims.Subject, claims.TaskId),
            ["policy_digest"] = claims.PolicyDigest,
        };
        if (claims.ApprovalId is not null)
        {
            payload["approval_id"] = claims.ApprovalId;
        }

        if (claims.Delegation is { } delegation)
        {
            Dictionary<string, object>? inner = null;
            for (var i = delegation.Actors.Count - 1; i >= 0; i--)
            {
                var act = new Dictionary<string, object>(StringComparer.Ordinal) { ["sub"] = delegation.Actors[i] };
                if (inner is not null)
                {
                    act[DelegationClaims.Act] = inner;
                }

                inner = act;
            }

            payload[DelegationClaims.Act] = inner!;
            payload[DelegationClaims.AncestorTokenIds] = delegation.Ancestors.ToArray();
            payload[DelegationClaims.AncestorPhase] = delegation.AncestorPhase.ToWire();
        }

        if (claims.ConfirmationJkt is not null || claims.ConfirmationX5t is not null)
        {
            var cnf = new Dictionary<string, object>(StringComparer.Ordinal);
            if (claims.ConfirmationJkt is not null)
            {
                cnf["jkt"] = claims.ConfirmationJkt;
            }

            if (claims.ConfirmationX5t is not null)
            {
                cnf["x5t#S256"] = claims.ConfirmationX5t;
            }

            payload["cnf"] = cnf;
        }

        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = claims.Audience,
            IssuedAt = claims.IssuedAt.UtcDateTime,
            NotBefore = claims.IssuedAt.UtcDateTime,
            Expires = claims.ExpiresAt.UtcDateTime,
            TokenType = TokenMinter.TokenType,
            Claims = payload,
            SigningCredentials = key.Credentials,
        });
    }

    private static string ReferenceSessionId(string subject, string taskId) =>
        Base64UrlEncoder.Encode(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(subject + "\n" + taskId))[..16]);

    // ECDSA signatures are randomized: header and payload are what must be equal.
    private static string SignedPart(string token) => token[..token.LastIndexOf('.')];

    private static async Task<bool> VerifiesAsync(string token, SigningKey key)
    {
        var publicKey = new ECDsaSecurityKey(ECDsa.Create(((ECDsaSecurityKey)key.Credentials.Key).ECDsa.ExportParameters(includePrivateParameters: false))) { KeyId = key.KeyId };
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(token, Broker.Jose.SignatureOnlyValidation.For(publicKey, [key.Algorithm], requireExpiration: true));
        return result.IsValid;
    }
}
