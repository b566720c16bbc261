using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Broker.Core.Errors;
using Broker.Core.Issuance;
using Broker.Core.Policy;
using Broker.Core.Revocation;
using Broker.Core.Risk;
using Broker.Redis;
using Broker.Server.Hosting;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using StackExchange.Redis;

namespace Broker.Server.Ssf;

/// <summary>
/// Shared Signals Framework push delivery (RFC 8935): the transmitter named in policy
/// (signals.ssf) POSTs Security Event Tokens (RFC 8417); CAEP/RISC events become signals on the
/// same path as the gRPC SignalService, or revocations. See docs/risk.md.
/// </summary>
internal static class SsfEndpoint
{
    public const string Path = "/ssf/events";
    public const string ContentType = "application/secevent+jwt";
    public const int MaxSetBytes = 64 * 1024;

    public const string RiskLevelChange = "https://schemas.openid.net/secevent/caep/event-type/risk-level-change";
    public const string SessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
    public const string AccountDisabled = "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
    public const string CredentialCompromise = "https://schemas.openid.net/secevent/risc/event-type/credential-compromise";

    private static readonly HashSet<string> Algorithms = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];

    public static IEndpointRouteBuilder MapSsf(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost(Path, HandleAsync);
        return endpoints;
    }

    private static async Task<IResult> HandleAsync(HttpContext http, SsfReceiver receiver)
    {
        var context = new RequestContext(Guid.NewGuid().ToString("N"), http.Connection.RemoteIpAddress?.ToString());
        try
        {
            if (!string.Equals(http.Request.ContentType?.Split(';')[0].Trim(), ContentType, StringComparison.OrdinalIgnoreCase))
            {
                throw new SsfRefusal("invalid_request", $"Content-Type must be {ContentType}.");
            }

            if (http.Request.ContentLength > MaxSetBytes)
            {
                throw new SsfRefusal("invalid_request", "The SET is too large.");
            }

            using var reader = new StreamReader(http.Request.Body, Encoding.ASCII);
            var buffer = new char[MaxSetBytes + 1];
            var read = await reader.ReadBlockAsync(buffer, http.RequestAborted);
            if (read > MaxSetBytes)
            {
                throw new SsfRefusal("invalid_request", "The SET is too large.");
            }

            await receiver.ReceiveAsync(new string(buffer, 0, read).Trim(), context, http.RequestAborted);
            return Results.StatusCode(StatusCodes.Status202Accepted);
        }
        catch (SsfRefusal refusal)
        {
            await receiver.AuditRefusalAsync(refusal, context, http.RequestAborted);
            return Results.Json(new { err = refusal.Err, description = refusal.Description }, statusCode: StatusCodes.Status400BadRequest);
        }
        catch (BrokerException ex) when (ex.Kind == FailureKind.Unavailable)
        {
            return Results.Json(new { err = "temporarily_unavailable", description = ex.Message }, statusCode: StatusCodes.Status503ServiceUnavailable);
        }
        catch (BrokerException ex)
        {
            // Refused by the signal path, which audited it already.
            var err = ex.Kind == FailureKind.PermissionDenied ? "access_denied" : "invalid_request";
            return Results.Json(new { err, description = $"{ex.Reason}: {ex.Message}" }, statusCode: StatusCodes.Status400BadRequest);
        }
    }

    internal sealed class SsfRefusal(string err, string description, string? issuer = null, string? signalId = null) : Exception(description)
    {
        public string Err { get; } = err;

        public string Description { get; } = description;

        public string? Issuer { get; } = issuer;

        public string? SignalId { get; } = signalId;
    }

    internal static bool IsAllowedAlgorithm(string alg) => Algorithms.Contains(alg);
}

/// <summary>Validates SETs from the configured transmitter and applies their events.</summary>
internal sealed class SsfReceiver
{
    public const string ReasonRefused = "SSF_SET_REFUSED";

    private readonly IPolicyProvider _policy;
    private readonly RiskService _risk;
    private readonly Revoker _revoker;
    private readonly ISsfReplayStore _replay;
    private readonly SsfKeySource _keys;
    private readonly BrokerOptions _options;
    private readonly RiskOptions _riskOptions;
    private readonly TimeProvider _time;

    public SsfReceiver(IPolicyProvider policy, RiskService risk, Revoker revoker, ISsfReplayStore replay, SsfKeySource keys, IOptions<BrokerOptions> options, IOptions<RiskOptions> riskOptions, TimeProvider time)
    {
        _policy = policy;
        _risk = risk;
        _revoker = revoker;
        _replay = replay;
        _keys = keys;
        _options = options.Value;
        _riskOptions = riskOptions.Value;
        _time = time;
    }

    public Task AuditRefusalAsync(SsfEndpoint.SsfRefusal refusal, RequestContext context, CancellationToken cancellationToken) =>
        _risk.AuditSignalRefusalAsync(refusal.Issuer, $"{ReasonRefused}:{refusal.Err}", refusal.SignalId, context, cancellationToken);

    public async Task ReceiveAsync(string set, RequestContext context, CancellationToken cancellationToken)
    {
        static SsfEndpoint.SsfRefusal Bad(string description) => new("invalid_request", description);

        if (_policy.Current.Signals is not { Ssf: { } ssf } signals)
        {
            throw new SsfEndpoint.SsfRefusal("access_denied", "No Shared Signals transmitter is configured (signals.ssf).");
        }

        var parts = set.Split('.');
        if (parts.Length != 3 || parts.Any(p => p.Length == 0))
        {
            throw Bad("The body is not a signed compact JWS.");
        }

        JsonElement header, payload;
        try
        {
            header = JsonDocument.Parse(Base64UrlEncoder.DecodeBytes(parts[0])).RootElement;
            payload = JsonDocument.Parse(Base64UrlEncoder.DecodeBytes(parts[1])).RootElement;
        }
        catch (Exception ex) when (ex is JsonException or FormatException or ArgumentException)
        {
            throw Bad("The SET header or payload is not base64url JSON.");
        }

        if (header.ValueKind != JsonValueKind.Object || payload.ValueKind != JsonValueKind.Object)
        {
            throw Bad("The SET header and payload must be JSON objects.");
        }

        var alg = String(header, "alg");
        if (alg is null || !SsfEndpoint.IsAllowedAlgorithm(alg))
        {
            throw Bad($"alg '{Shorten(alg)}' is not accepted; use ES256/384/512, RS256/384/512 or PS256/384/512.");
        }

        if (header.TryGetProperty("crit", out _))
        {
            throw Bad("crit header parameters are not supported.");
        }

        if (!string.Equals(String(header, "typ"), "secevent+jwt", StringComparison.OrdinalIgnoreCase)
            && !string.Equals(String(header, "typ"), "application/secevent+jwt", StringComparison.OrdinalIgnoreCase))
        {
            throw Bad("typ must be secevent+jwt (RFC 8417).");
        }

        var issuer = String(payload, "iss");
        if (!string.Equals(issuer, ssf.Issuer, StringComparison.Ordinal))
        {
            throw new SsfEndpoint.SsfRefusal("invalid_issuer", "iss is not the configured transmitter.");
        }

        var keys = await _keys.GetAsync(ssf, cancellationToken);
        var kid = String(header, "kid");
        var candidates = kid is null ? keys : keys.Where(k => k.KeyId == kid).ToList();
        if (candidates.Count == 0)
        {
            throw new SsfEndpoint.SsfRefusal("invalid_key", "No key of the transmitter has this kid.", issuer);
        }

        var validation = new TokenValidationParameters
        {
            IssuerSigningKeys = candidates,
            ValidAlgorithms = [alg],
            ValidateIssuer = false,
            ValidateAudience = false,
            ValidateLifetime = false,
            RequireExpirationTime = false,
            RequireSignedTokens = true,
            ValidTypes = ["secevent+jwt", "application/secevent+jwt"],
            TryAllIssuerSigningKeys = kid is null,
        };
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(set, validation);
        if (!result.IsValid)
        {
            throw new SsfEndpoint.SsfRefusal("invalid_key", "The SET signature does not verify with the transmitter's keys.", issuer);
        }

        var audience = ssf.Audience ?? (string.IsNullOrEmpty(_options.Audience) ? _options.Issuer : _options.Audience);
        if (!HasAudience(payload, audience))
        {
            throw new SsfEndpoint.SsfRefusal("invalid_audience", "aud does not name this broker.", issuer);
        }

        var now = _time.GetUtcNow();
        if (!payload.TryGetProperty("iat", out var iatElement) || !iatElement.TryGetInt64(out var iatSeconds))
        {
            throw new SsfEndpoint.SsfRefusal("invalid_request", "iat is required.", issuer);
        }

        var iat = DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(iatSeconds, 0, 253402300799));
        if (iat > now + _riskOptions.ClockSkew)
        {
            throw new SsfEndpoint.SsfRefusal("invalid_request", "iat is in the future.", issuer);
        }

        if (iat < now - ssf.MaxAge - _riskOptions.ClockSkew)
        {
            throw new SsfEndpoint.SsfRefusal("invalid_request", $"The SET is older than {(int)ssf.MaxAge.TotalSeconds}s (signals.ssf.max_age).", issuer);
        }

        if (payload.TryGetProperty("exp", out var expElement) && (!expElement.TryGetInt64(out var exp) || DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(exp, 0, 253402300799)) < now - _riskOptions.ClockSkew))
        {
            throw new SsfEndpoint.SsfRefusal("invalid_request", "The SET has expired.", issuer);
        }

        var jti = String(payload, "jti");
        if (string.IsNullOrEmpty(jti) || jti.Length > 256)
        {
            throw new SsfEndpoint.SsfRefusal("invalid_request", "jti is required (at most 256 characters).", issuer);
        }

        var signalId = SignalId(jti);
        if (!payload.TryGetProperty("events", out var events) || events.ValueKind != JsonValueKind.Object)
        {
            throw new SsfEndpoint.SsfRefusal("invalid_request", "events is required.", issuer, signalId);
        }

        var list = events.EnumerateObject().ToList();
        if (list.Count != 1)
        {
            throw new SsfEndpoint.SsfRefusal("invalid_request", "A SET must carry exactly one event.", issuer, signalId);
        }

        var (type, body) = (list[0].Name, list[0].Value);
        if (type is not (SsfEndpoint.RiskLevelChange or SsfEndpoint.SessionRevoked or SsfEndpoint.AccountDisabled or SsfEndpoint.CredentialCompromise))
        {
            throw new SsfEndpoint.SsfRefusal("invalid_request", $"Event type '{Shorten(type)}' is not accepted.", issuer, signalId);
        }

        if (body.ValueKind != JsonValueKind.Object)
        {
            throw new SsfEndpoint.SsfRefusal("invalid_request", "The event must be a JSON object.", issuer, signalId);
        }

        var agent = Subject(payload, body) ?? throw new SsfEndpoint.SsfRefusal("invalid_request", "The subject (sub_id, or the event's subject) must be format uri or opaque naming the agent's workload id.", issuer, signalId);
        var observed = body.TryGetProperty("event_timestamp", out var ts) && ts.TryGetInt64(out var tsSeconds)
            ? DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(tsSeconds, 0, 253402300799))
            : iat;

        string? level = null;
        string? evidence = null;
        if (type == SsfEndpoint.RiskLevelChange)
        {
            level = String(body, "current_level")?.ToLowerInvariant();
            if (level is null || !RiskLevels.TryParse(level, out _))
            {
                throw new SsfEndpoint.SsfRefusal("invalid_request", "current_level must be LOW, MEDIUM or HIGH.", issuer, signalId);
            }

            evidence = String(body, "risk_reason") is { Length: > 0 and <= RiskService.MaxEvidenceRefLength } reason && !reason.Any(char.IsControl) ? reason : null;
        }
        else if (type != SsfEndpoint.SessionRevoked)
        {
            level = "critical";
        }

        // The jti is claimed before any effect: a replay is refused, not re-applied.
        var claimed = await _replay.TryClaimAsync(issuer!, jti, now + ssf.MaxAge + _riskOptions.ClockSkew + _riskOptions.ClockSkew, cancellationToken);
        if (!claimed)
        {
            throw new SsfEndpoint.SsfRefusal("invalid_request", "jti was already received (replay).", issuer, signalId);
        }

        try
        {
            if (level is null)
            {
                await _revoker.RevokeAsync(
                    [Broker.Revocation.RevocationSelector.ForAgent(agent)],
                    RiskService.Actor,
                    $"CAEP session-revoked from {issuer} (signal {signalId})",
                    context,
                    cancellationToken);
                return;
            }

            var detector = type == SsfEndpoint.RiskLevelChange ? "ssf.caep.risk-level-change" : type == SsfEndpoint.AccountDisabled ? "ssf.risc.account-disabled" : "ssf.risc.credential-compromise";
            var parsed = RiskLevels.TryParse(level, out var known) ? known : RiskLevel.Critical;
            await _risk.ReportFromTransmitterAsync(
                issuer!,
                new SignalReport(signalId, agent, null, level, Score(parsed), detector, evidence, observed, observed + signals.MaxValidity),
                context,
                cancellationToken);
        }
        catch (BrokerException ex) when (ex.Kind == FailureKind.Unavailable)
        {
            // Nothing (or not all) took effect: let the transmitter's retry through.
            await _replay.ReleaseAsync(issuer!, jti, CancellationToken.None);
            throw;
        }
    }

    /// <summary>The SET's jti as the signal id: <c>ssf:</c> + jti when it is a valid id, else + its SHA-256.</summary>
    public static string SignalId(string jti)
    {
        var id = "ssf:" + jti;
        return RiskService.IsValidSignalId(id) ? id : "ssf:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(jti)));
    }

    private static double Score(RiskLevel level) => level switch
    {
        RiskLevel.None => 0,
        RiskLevel.Low => 25,
        RiskLevel.Medium => 50,
        RiskLevel.High => 75,
        _ => 100,
    };

    private static string? Subject(JsonElement payload, JsonElement body)
    {
        var subject = payload.TryGetProperty("sub_id", out var s) ? s : body.TryGetProperty("subject", out var e) ? e : default;
        if (subject.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        var id = String(subject, "format") switch
        {
            "uri" => String(subject, "uri"),
            "opaque" => String(subject, "id"),
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

    private static string? String(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static string Shorten(string? text) => text is null ? "" : text.Length <= 64 ? text : text[..64] + "…";
}

/// <summary>The transmitter's public signing keys, from its JWKS file (re-read when it changes) or URL (cached).</summary>
internal sealed class SsfKeySource(TimeProvider time)
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(5) };
    private static readonly TimeSpan UrlCache = TimeSpan.FromMinutes(5);
    private readonly Lock _gate = new();
    private (string Source, DateTimeOffset Stamp, IReadOnlyList<SecurityKey> Keys)? _cached;

    public async Task<IReadOnlyList<SecurityKey>> GetAsync(SsfTransmitterPolicy ssf, CancellationToken cancellationToken)
    {
        var source = ssf.JwksFile ?? ssf.JwksUri!.ToString();
        var stamp = ssf.JwksFile is not null ? new DateTimeOffset(File.GetLastWriteTimeUtc(ssf.JwksFile)) : time.GetUtcNow();
        lock (_gate)
        {
            if (_cached is { } c && c.Source == source && (ssf.JwksFile is not null ? c.Stamp == stamp : stamp - c.Stamp < UrlCache))
            {
                return c.Keys;
            }
        }

        string json;
        try
        {
            json = ssf.JwksFile is not null ? await File.ReadAllTextAsync(ssf.JwksFile, cancellationToken) : await Http.GetStringAsync(ssf.JwksUri, cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException or TaskCanceledException or UnauthorizedAccessException)
        {
            throw BrokerErrors.Unavailable(BrokerErrors.StateUnavailable, "The transmitter's keys cannot be read; try again.", ex);
        }

        IReadOnlyList<SecurityKey> keys;
        try
        {
            // Public EC and RSA keys only: never a shared secret from a public key set.
            keys = new JsonWebKeySet(json).Keys
                .Where(k => k.Kty is "EC" or "RSA" && !k.HasPrivateKey && (string.IsNullOrEmpty(k.Use) || k.Use == "sig"))
                .Cast<SecurityKey>()
                .ToList();
        }
        catch (ArgumentException ex)
        {
            throw BrokerErrors.Unavailable(BrokerErrors.StateUnavailable, "The transmitter's JWKS is not valid JSON.", ex);
        }

        lock (_gate)
        {
            _cached = (source, stamp, keys);
        }

        return keys;
    }
}

/// <summary>SET jtis already received, per transmitter, until a replay would be refused as too old anyway.</summary>
internal interface ISsfReplayStore
{
    ValueTask<bool> TryClaimAsync(string issuer, string jti, DateTimeOffset until, CancellationToken cancellationToken);

    ValueTask ReleaseAsync(string issuer, string jti, CancellationToken cancellationToken);
}

internal sealed class InMemorySsfReplayStore(TimeProvider time) : ISsfReplayStore
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, DateTimeOffset> _seen = new(StringComparer.Ordinal);

    public ValueTask<bool> TryClaimAsync(string issuer, string jti, DateTimeOffset until, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        foreach (var (key, expiry) in _seen)
        {
            if (expiry <= now)
            {
                _seen.TryRemove(key, out _);
            }
        }

        return ValueTask.FromResult(_seen.TryAdd(issuer + "#" + jti, until));
    }

    public ValueTask ReleaseAsync(string issuer, string jti, CancellationToken cancellationToken)
    {
        _seen.TryRemove(issuer + "#" + jti, out _);
        return ValueTask.CompletedTask;
    }
}

internal sealed class RedisSsfReplayStore(IConnectionMultiplexer redis, RedisKeys keys, TimeProvider time) : ISsfReplayStore
{
    public async ValueTask<bool> TryClaimAsync(string issuer, string jti, DateTimeOffset until, CancellationToken cancellationToken)
    {
        var ttl = until - time.GetUtcNow();
        try
        {
            return await redis.GetDatabase().StringSetAsync(Key(issuer, jti), "1", ttl > TimeSpan.Zero ? ttl : TimeSpan.FromSeconds(1), When.NotExists);
        }
        catch (RedisException ex)
        {
            throw BrokerErrors.Unavailable(BrokerErrors.StateUnavailable, "Broker state cannot be reached; try again.", ex);
        }
    }

    public async ValueTask ReleaseAsync(string issuer, string jti, CancellationToken cancellationToken)
    {
        try
        {
            await redis.GetDatabase().KeyDeleteAsync(Key(issuer, jti));
        }
        catch (RedisException)
        {
            // The claim then expires on its own.
        }
    }

    private RedisKey Key(string issuer, string jti) =>
        keys.Proof("ssf:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(issuer + "#" + jti))));
}
