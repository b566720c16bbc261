using System.Buffers;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Broker.Core.Signing;
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
/// <remarks>
/// The payload is written straight from <see cref="TokenClaims"/> into a per-thread buffer and
/// signed by a <see cref="CompactJwsSigner"/>: a token costs its own string and little else.
/// Going through a SecurityTokenDescriptor and a claims dictionary cost about 9 KiB per token.
/// Member order and escaping are those JsonWebTokenHandler writes (TokenMinterTests hold both
/// to the same bytes): aud, iss, exp, iat, nbf, then the broker's claims.
/// </remarks>
internal sealed class TokenMinter
{
    public const string TokenType = "at+jwt";

    // Mint never yields, so one buffer and writer per thread is never shared by two tokens.
    [ThreadStatic]
    private static PayloadBuffer? t_payload;

    private readonly ActiveKeySigner _signer;
    private readonly string _issuer;

    public TokenMinter(SigningKeyRing keys, string issuer)
    {
        _signer = new ActiveKeySigner(keys, TokenType);
        _issuer = issuer;
    }

    public string Mint(TokenClaims claims)
    {
        var buffer = t_payload ??= new PayloadBuffer();
        var writer = buffer.Start();
        WritePayload(writer, claims);
        writer.Flush();
        return _signer.Sign(claims.IssuedAt, buffer.Written);
    }

    private void WritePayload(Utf8JsonWriter writer, TokenClaims claims)
    {
        writer.WriteStartObject();
        if (!string.IsNullOrEmpty(claims.Audience))
        {
            writer.WriteString("aud", claims.Audience);
        }

        if (!string.IsNullOrEmpty(_issuer))
        {
            writer.WriteString("iss", _issuer);
        }

        writer.WriteNumber("exp", EpochTime.GetIntDate(claims.ExpiresAt.UtcDateTime));
        writer.WriteNumber("iat", EpochTime.GetIntDate(claims.IssuedAt.UtcDateTime));
        writer.WriteNumber("nbf", EpochTime.GetIntDate(claims.IssuedAt.UtcDateTime));
        writer.WriteString("sub", claims.Subject);
        writer.WriteString("jti", claims.TokenId);

        // The client holding the token: a delegated token's current actor (RFC 8693 section 4.3).
        writer.WriteString("client_id", claims.Delegation?.Actors[0] ?? claims.Subject);
        WriteScope(writer, claims.Scopes);
        writer.WriteString("task", claims.TaskId);
        writer.WriteString("phase", claims.Phase.ToWire());
        Span<char> sid = stackalloc char[SessionIdLength];
        SessionId(claims.Subject, claims.TaskId, sid);
        writer.WriteString("sid", sid);
        writer.WriteString("policy_digest", claims.PolicyDigest);

        if (claims.ApprovalId is not null)
        {
            // The approval that allowed this token (docs/approvals.md).
            writer.WriteString("approval_id", claims.ApprovalId);
        }

        if (claims.Delegation is { } delegation)
        {
            // RFC 8693 section 4.1: the current actor outermost, prior actors nested inside it; and
            // the ancestor token ids, so revoking any of them revokes this one (DelegationClaims).
            writer.WritePropertyName(Broker.Revocation.DelegationClaims.Act);
            WriteActor(writer, delegation.Actors, 0);
            writer.WriteStartArray(Broker.Revocation.DelegationClaims.AncestorTokenIds);
            foreach (var ancestor in delegation.Ancestors)
            {
                writer.WriteStringValue(ancestor);
            }

            writer.WriteEndArray();
            writer.WriteString(Broker.Revocation.DelegationClaims.AncestorPhase, delegation.AncestorPhase.ToWire());
        }

        if (claims.ConfirmationJkt is not null || claims.ConfirmationX5t is not null)
        {
            writer.WriteStartObject("cnf");
            if (claims.ConfirmationJkt is not null)
            {
                writer.WriteString("jkt", claims.ConfirmationJkt);
            }

            if (claims.ConfirmationX5t is not null)
            {
                writer.WriteString("x5t#S256", claims.ConfirmationX5t);
            }

            writer.WriteEndObject();
        }

        writer.WriteEndObject();
    }

    /// <summary>The scopes space-separated (RFC 9068 <c>scope</c>), without building the joined string.</summary>
    private static void WriteScope(Utf8JsonWriter writer, IReadOnlyList<string> scopes)
    {
        var length = scopes.Count == 0 ? 0 : scopes.Count - 1;
        foreach (var scope in scopes)
        {
            length += scope.Length;
        }

        var rented = ArrayPool<char>.Shared.Rent(Math.Max(length, 1));
        try
        {
            var at = 0;
            foreach (var scope in scopes)
            {
                if (at > 0)
                {
                    rented[at++] = ' ';
                }

                scope.CopyTo(rented.AsSpan(at));
                at += scope.Length;
            }

            writer.WriteString("scope", rented.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<char>.Shared.Return(rented);
        }
    }

    /// <summary><c>{"sub": actors[i], "act": {"sub": actors[i + 1], ...}}</c>: the current actor outermost.</summary>
    private static void WriteActor(Utf8JsonWriter writer, IReadOnlyList<string> actors, int index)
    {
        writer.WriteStartObject();
        writer.WriteString("sub", actors[index]);
        if (index + 1 < actors.Count)
        {
            writer.WritePropertyName(Broker.Revocation.DelegationClaims.Act);
            WriteActor(writer, actors, index + 1);
        }

        writer.WriteEndObject();
    }

    /// <summary>Characters in a <c>sid</c>: 16 bytes of SHA-256, base64url.</summary>
    internal const int SessionIdLength = 22;

    /// <summary>One session per (workload, task): stable across the task's phases, not secret.</summary>
    internal static void SessionId(string subject, string taskId, Span<char> destination)
    {
        // UTF-8 of subject + "\n" + taskId, without building that string.
        var length = Encoding.UTF8.GetByteCount(subject) + 1 + Encoding.UTF8.GetByteCount(taskId);
        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var at = Encoding.UTF8.GetBytes(subject, rented);
            rented[at++] = (byte)'\n';
            at += Encoding.UTF8.GetBytes(taskId, rented.AsSpan(at));
            Span<byte> hash = stackalloc byte[32];
            SHA256.HashData(rented.AsSpan(0, at), hash);
            Base64Url.EncodeToChars(hash[..16], destination);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    public static string NewTokenId()
    {
        Span<byte> id = stackalloc byte[16];
        RandomNumberGenerator.Fill(id);
        return Base64Url.EncodeToString(id);
    }

    /// <summary>A reusable UTF-8 buffer and JSON writer for one thread's payloads.</summary>
    private sealed class PayloadBuffer
    {
        private readonly ArrayBufferWriter<byte> _bytes = new(1024);
        private readonly Utf8JsonWriter _writer;

        public PayloadBuffer() => _writer = new Utf8JsonWriter(_bytes, CompactJwsSigner.JsonOptions);

        public ReadOnlySpan<byte> Written => _bytes.WrittenSpan;

        public Utf8JsonWriter Start()
        {
            _bytes.ResetWrittenCount();
            _writer.Reset(_bytes);
            return _writer;
        }
    }
}
