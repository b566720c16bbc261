using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Broker.Core.Attestation;
using Broker.Core.Attestation.Internal;
using Broker.Core.Errors;
using Broker.Core.Policy;
using Broker.Core.Risk;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Broker.Core.Ssf;

/// <summary>
/// Reads a pushed Security Event Token (RFC 8417) from the configured transmitter through the
/// attestation JWS stack: the same strict pre-flight (compact only, canonical base64url, no
/// duplicate members, alg/kid/typ headers only), the same key loading and signature check, the
/// same size limit (<see cref="AttestationOptions.MaxProofBytes"/>) and clock skew
/// (<see cref="AttestationOptions.ClockSkew"/>). Throws only <see cref="SetRefusedException"/> for what the
/// sender controls, and <see cref="BrokerException"/> (unavailable) when the keys cannot be read.
/// </summary>
public sealed class SecurityEventReader
{
    private const long MaxNumericDate = 253402300799;

    private readonly AttestationOptions _options;
    private readonly TimeProvider _time;
    private readonly JwtProofValidator _validator;
    private readonly TransmitterKeys _keys;

    public SecurityEventReader(IOptions<AttestationOptions> options, TimeProvider time, HttpClient bundleClient, ILogger<SecurityEventReader>? logger = null)
    {
        _options = options.Value;
        _time = time;
        _validator = new JwtProofValidator(_options, time);
        _keys = new TransmitterKeys(new BundleFetcher(bundleClient, _options.BundleFetchTimeout, time), _validator, time, (ILogger?)logger ?? NullLogger.Instance);
    }

    /// <summary>Largest SET read, in bytes (the attestation proof limit).</summary>
    public int MaxBytes => _options.MaxProofBytes;

    /// <summary>The allowed clock difference for <c>iat</c> and <c>exp</c>.</summary>
    public TimeSpan ClockSkew => _options.ClockSkew;

    /// <summary>Verifies <paramref name="set"/> against <paramref name="transmitter"/> and reads its one event.</summary>
    /// <param name="audience">The <c>aud</c> the SET must name (the transmitter's configured audience, else the broker's).</param>
    public async ValueTask<SecurityEvent> ReadAsync(string set, SsfTransmitterPolicy transmitter, string audience, CancellationToken cancellationToken)
    {
        JwsParts parts;
        try
        {
            parts = JwsPreflight.Check(set, _options.MaxProofBytes, JwsProfile.SecurityEvent);
        }
        catch (BrokerException ex)
        {
            throw new SetRefusedException(ex.Reason == BrokerErrors.AttestationKeyUnknown ? "invalid_key" : "invalid_request", ex.Message + ".");
        }

        var issuer = OptionalString(parts.Payload, "iss", null);
        if (!string.Equals(issuer, transmitter.Issuer, StringComparison.Ordinal))
        {
            throw new SetRefusedException("invalid_issuer", "iss is not the configured transmitter.");
        }

        // Shapes first, so a wrongly typed registered claim is reported as such rather than
        // tripping the library's parser during signature verification.
        CheckShapes(parts.Payload, issuer!);
        try
        {
            var key = await _validator.FindKeyAsync(parts, _keys.For(transmitter), cancellationToken);
            await _validator.VerifySignatureAsync(set, parts, key);
        }
        catch (BrokerException ex) when (ex.Kind == FailureKind.Unauthenticated)
        {
            var description = ex.Reason == BrokerErrors.AttestationKeyUnknown
                ? "No key of the transmitter has this kid."
                : "The SET signature does not verify with the transmitter's keys.";
            throw new SetRefusedException("invalid_key", description, issuer);
        }

        return ReadClaims(parts.Payload, issuer!, transmitter.MaxAge, audience);
    }

    /// <summary>The claims of a SET whose signature verified, checked against the clock.</summary>
    internal SecurityEvent ReadClaims(JsonElement payload, string issuer, TimeSpan maxAge, string audience)
    {
        if (!HasAudience(payload, audience))
        {
            throw new SetRefusedException("invalid_audience", "aud does not name this broker.", issuer);
        }

        var now = _time.GetUtcNow();
        var skew = _options.ClockSkew;
        var iat = NumericDate(payload, "iat", issuer) ?? throw new SetRefusedException("invalid_request", "iat is required.", issuer);
        if (iat > now + skew)
        {
            throw new SetRefusedException("invalid_request", "iat is in the future.", issuer);
        }

        if (iat < now - maxAge - skew)
        {
            throw new SetRefusedException("invalid_request", $"The SET is older than {(int)maxAge.TotalSeconds}s (signals.ssf.max_age).", issuer);
        }

        if (NumericDate(payload, "exp", issuer) is { } exp && exp < now - skew)
        {
            throw new SetRefusedException("invalid_request", "The SET has expired.", issuer);
        }

        var jti = OptionalString(payload, "jti", issuer);
        if (string.IsNullOrEmpty(jti) || jti.Length > JwtProofValidator.MaxJwtIdLength || jti.Any(char.IsControl))
        {
            throw new SetRefusedException("invalid_request", $"jti is required (at most {JwtProofValidator.MaxJwtIdLength} characters, no control characters).", issuer);
        }

        var signalId = SignalId(jti);
        if (!payload.TryGetProperty("events", out var events) || events.ValueKind != JsonValueKind.Object)
        {
            throw new SetRefusedException("invalid_request", "events is required.", issuer, signalId);
        }

        var list = events.EnumerateObject().ToList();
        if (list.Count != 1)
        {
            throw new SetRefusedException("invalid_request", "A SET must carry exactly one event.", issuer, signalId);
        }

        var (type, body) = (list[0].Name, list[0].Value);
        if (!SecurityEventTypes.Accepted.Contains(type))
        {
            throw new SetRefusedException("invalid_request", $"Event type '{Shorten(type)}' is not accepted.", issuer, signalId);
        }

        if (body.ValueKind != JsonValueKind.Object)
        {
            throw new SetRefusedException("invalid_request", "The event must be a JSON object.", issuer, signalId);
        }

        var agent = Subject(payload, body)
            ?? throw new SetRefusedException("invalid_request", "The subject (sub_id, or the event's subject) must be format uri or opaque naming the agent's workload id.", issuer, signalId);
        var observed = body.TryGetProperty("event_timestamp", out var ts) && ts.ValueKind == JsonValueKind.Number && ts.TryGetInt64(out var tsSeconds)
            ? DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(tsSeconds, 0, MaxNumericDate))
            : iat;

        string? level = null;
        string? evidence = null;
        if (type == SecurityEventTypes.RiskLevelChange)
        {
            level = (body.TryGetProperty("current_level", out var l) && l.ValueKind == JsonValueKind.String ? l.GetString() : null)?.ToLowerInvariant();
            if (level is null || !RiskLevels.TryParse(level, out _))
            {
                throw new SetRefusedException("invalid_request", "current_level must be LOW, MEDIUM or HIGH.", issuer, signalId);
            }

            evidence = body.TryGetProperty("risk_reason", out var r) && r.ValueKind == JsonValueKind.String
                && r.GetString() is { Length: > 0 and <= RiskService.MaxEvidenceRefLength } reason && !reason.Any(char.IsControl)
                ? reason
                : null;
        }
        else if (type != SecurityEventTypes.SessionRevoked)
        {
            level = "critical";
        }

        return new SecurityEvent(issuer, jti, signalId, type, agent, level, evidence, iat, observed);
    }

    private static void CheckShapes(JsonElement payload, string issuer)
    {
        _ = OptionalString(payload, "jti", issuer);
        _ = OptionalString(payload, "sub", issuer);
        _ = NumericDate(payload, "iat", issuer);
        _ = NumericDate(payload, "exp", issuer);
        _ = NumericDate(payload, "nbf", issuer);
        if (payload.TryGetProperty("aud", out var aud)
            && aud.ValueKind != JsonValueKind.String
            && !(aud.ValueKind == JsonValueKind.Array && aud.EnumerateArray().All(a => a.ValueKind == JsonValueKind.String)))
        {
            throw new SetRefusedException("invalid_request", "aud must be a string or an array of strings.", issuer);
        }
    }

    /// <summary>The SET's jti as the signal id: <c>ssf:</c> + jti when it is a valid id, else + its SHA-256.</summary>
    public static string SignalId(string jti)
    {
        var id = "ssf:" + jti;
        return RiskService.IsValidSignalId(id) ? id : "ssf:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(jti)));
    }

    private static DateTimeOffset? NumericDate(JsonElement payload, string name, string issuer)
    {
        if (!payload.TryGetProperty(name, out var value))
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var seconds)
            ? DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(seconds, 0, MaxNumericDate))
            : throw new SetRefusedException("invalid_request", $"{name} must be a NumericDate in whole seconds.", issuer);
    }

    private static string? Subject(JsonElement payload, JsonElement body)
    {
        var subject = payload.TryGetProperty("sub_id", out var s) ? s : body.TryGetProperty("subject", out var e) ? e : default;
        if (subject.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        var id = Text(subject, "format") switch
        {
            "uri" => Text(subject, "uri"),
            "opaque" => Text(subject, "id"),
            _ => null,
        };
        return string.IsNullOrEmpty(id) || id.Length > RiskService.MaxAgentLength || id.Any(c => char.IsControl(c) || char.IsWhiteSpace(c)) ? null : id;
    }

    private static bool HasAudience(JsonElement payload, string audience)
    {
        if (!payload.TryGetProperty("aud", out var aud))
        {
            return false;
        }

        return aud.ValueKind switch
        {
            JsonValueKind.String => aud.GetString() == audience,
            JsonValueKind.Array => aud.EnumerateArray().Any(a => a.ValueKind == JsonValueKind.String && a.GetString() == audience),
            _ => false,
        };
    }

    /// <summary>A string member, null when absent; another JSON type is refused.</summary>
    private static string? OptionalString(JsonElement element, string name, string? issuer) =>
        !element.TryGetProperty(name, out var value) ? null
        : value.ValueKind == JsonValueKind.String ? value.GetString()
        : throw new SetRefusedException("invalid_request", $"{name} must be a string.", issuer);

    private static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static string Shorten(string text) => text.Length <= 64 ? text : text[..64] + "…";
}
