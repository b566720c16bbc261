using System.Security.Cryptography;
using System.Text;
using Broker.Core.Signing;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Core.Issuance;

/// <summary>What goes into one access token.</summary>
internal sealed record TokenClaims(
    string TokenId,
    string Subject,
    string Audience,
    IReadOnlyList<string> Scopes,
    string TaskId,
    TaskPhase Phase,
    string PolicyDigest,
    DateTimeOffset IssuedAt,
    DateTimeOffset ExpiresAt,
    string? ConfirmationJkt,
    string? ConfirmationX5t,
    string? ApprovalId = null,
    DelegationChain? Delegation = null);

/// <summary>Signs RFC 9068 access tokens (<c>typ: at+jwt</c>) with the ring's active key.</summary>
internal sealed class TokenMinter
{
    public const string TokenType = "at+jwt";

    private readonly JsonWebTokenHandler _handler = new() { SetDefaultTimesOnTokenCreation = false };
    private readonly SigningKeyRing _keys;
    private readonly string _issuer;

    public TokenMinter(SigningKeyRing keys, string issuer)
    {
        _keys = keys;
        _issuer = issuer;
    }

    public string Mint(TokenClaims claims)
    {
        var payload = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            [JwtRegisteredClaimNames.Sub] = claims.Subject,
            [JwtRegisteredClaimNames.Jti] = claims.TokenId,
            // The client holding the token: a delegated token's current actor (RFC 8693 section 4.3).
            ["client_id"] = claims.Delegation?.Actors[0] ?? claims.Subject,
            ["scope"] = string.Join(' ', claims.Scopes),
            ["task"] = claims.TaskId,
            ["phase"] = claims.Phase.ToWire(),
            ["sid"] = SessionId(claims.Subject, claims.TaskId),
            ["policy_digest"] = claims.PolicyDigest,
        };

        if (claims.ApprovalId is not null)
        {
            // The approval that allowed this token (docs/approvals.md).
            payload["approval_id"] = claims.ApprovalId;
        }

        if (claims.Delegation is { } delegation)
        {
            // RFC 8693 section 4.1: the current actor outermost, prior actors nested inside it; and
            // the ancestor token ids, so revoking any of them revokes this one (DelegationClaims).
            payload[Broker.Revocation.DelegationClaims.Act] = delegation.ActClaim();
            payload[Broker.Revocation.DelegationClaims.AncestorTokenIds] = delegation.Ancestors.ToArray();
            payload[Broker.Revocation.DelegationClaims.AncestorPhase] = delegation.AncestorPhase.ToWire();
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

        var descriptor = new SecurityTokenDescriptor
        {
            Issuer = _issuer,
            Audience = claims.Audience,
            IssuedAt = claims.IssuedAt.UtcDateTime,
            NotBefore = claims.IssuedAt.UtcDateTime,
            Expires = claims.ExpiresAt.UtcDateTime,
            TokenType = TokenType,
            Claims = payload,
            SigningCredentials = _keys.Active(claims.IssuedAt).Credentials,
        };

        return _handler.CreateToken(descriptor);
    }

    /// <summary>One session per (workload, task): stable across the task's phases, not secret.</summary>
    internal static string SessionId(string subject, string taskId)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(subject + "\n" + taskId), hash);
        return Base64UrlEncoder.Encode(hash[..16].ToArray());
    }

    public static string NewTokenId()
    {
        Span<byte> id = stackalloc byte[16];
        RandomNumberGenerator.Fill(id);
        return Base64UrlEncoder.Encode(id.ToArray());
    }
}
