using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Broker.Jose;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Broker.ResourceServer.Internal;

/// <summary>
/// Holds sender-constrained tokens to their holder, which stock JwtBearer does not: a token with
/// <c>cnf.jkt</c> must come as <c>Authorization: DPoP</c> with a fresh DPoP proof (RFC 9449
/// section 7) signed by that key for this request and this token (<c>ath</c>), each proof
/// accepted once by this instance; a token with <c>cnf.x5t#S256</c> must come over a TLS
/// connection whose client certificate has that SHA-256 thumbprint (RFC 8705 section 3).
/// </summary>
internal sealed partial class SenderConstraintCheck(TimeProvider time, ILogger<SenderConstraintCheck> logger)
{
    private const string DpopScheme = "DPoP";
    private const string UsedDpopScheme = "broker.dpop-scheme";

    private readonly DpopReplayCache _replays = new(time);

    public void Attach(JwtBearerOptions options, TimeSpan clockSkew)
    {
        var reader = new DpopProofReader(clockSkew);
        var events = options.Events ??= new JwtBearerEvents();

        var received = events.OnMessageReceived;
        events.OnMessageReceived = async context =>
        {
            await received(context);

            // Stock JwtBearer reads only the Bearer scheme.
            var authorization = context.Request.Headers.Authorization.ToString();
            if (context.Token is null && authorization.StartsWith(DpopScheme + " ", StringComparison.OrdinalIgnoreCase))
            {
                context.Token = authorization[(DpopScheme.Length + 1)..].Trim();
                context.HttpContext.Items[UsedDpopScheme] = true;
            }
        };

        var validated = events.OnTokenValidated;
        events.OnTokenValidated = async context =>
        {
            await validated(context);
            if (context.Result is null && await RefusalAsync(context, reader) is { } refusal)
            {
                Log.Refused(logger, refusal.Reason);
                context.Fail(refusal);
            }
        };

        var challenge = events.OnChallenge;
        events.OnChallenge = async context =>
        {
            var dpop = context.HttpContext.Items.ContainsKey(UsedDpopScheme);
            if (context.AuthenticateFailure is SenderConstraintRefusedException { Dpop: true } refused || dpop)
            {
                // RFC 9449 section 7.1: the DPoP scheme's challenge, naming the algorithms accepted.
                context.HandleResponse();
                var (error, description) = context.AuthenticateFailure switch
                {
                    SenderConstraintRefusedException r => (r.Error, r.Message),
                    BrokerTokenRefusedException r => ("invalid_token", r.Description),
                    _ => ("invalid_token", "token not accepted"),
                };
                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                context.Response.Headers.WWWAuthenticate =
                    $"{DpopScheme} error=\"{error}\", error_description=\"{description}\", algs=\"{string.Join(' ', DpopProofReader.Algorithms)}\"";
                return;
            }

            if (context.AuthenticateFailure is SenderConstraintRefusedException certificate)
            {
                context.Error = certificate.Error;
                context.ErrorDescription = certificate.Message;
            }

            await challenge(context);
        };
    }

    private async Task<SenderConstraintRefusedException?> RefusalAsync(TokenValidatedContext context, DpopProofReader reader)
    {
        var request = context.HttpContext.Request;
        var usedDpop = context.HttpContext.Items.ContainsKey(UsedDpopScheme);
        var (jkt, x5t) = Confirmation(context.SecurityToken as JsonWebToken);
        if (jkt is null)
        {
            if (usedDpop)
            {
                return new SenderConstraintRefusedException("invalid_token", "token is not DPoP-bound; send it as Bearer", "DPOP_TOKEN_NOT_BOUND", dpop: true);
            }
        }
        else
        {
            if (!usedDpop)
            {
                return new SenderConstraintRefusedException("invalid_token", "DPoP-bound token must be sent with the DPoP scheme", DpopReasons.ProofMissing, dpop: true);
            }

            var proofs = request.Headers[DpopScheme];
            if (proofs.Count != 1 || string.IsNullOrEmpty(proofs[0]))
            {
                return new SenderConstraintRefusedException("invalid_dpop_proof", "send exactly one DPoP proof", DpopReasons.ProofMissing, dpop: true);
            }

            var target = new Uri(request.Scheme + "://" + request.Host.Value + request.PathBase.Value + request.Path.Value);
            DpopProof proof;
            try
            {
                proof = await reader.ReadAsync(proofs[0]!, request.Method, target, time.GetUtcNow(), ((JsonWebToken)context.SecurityToken).EncodedToken);
            }
            catch (DpopProofException e)
            {
                return new SenderConstraintRefusedException("invalid_dpop_proof", Describe(e.Reason), e.Reason, dpop: true);
            }

            if (!FixedEquals(proof.Jkt, jkt))
            {
                return new SenderConstraintRefusedException("invalid_dpop_proof", "DPoP proof is signed by another key than the token is bound to", DpopReasons.KeyMismatch, dpop: true);
            }

            if (!_replays.TryClaim(proof.Jkt + ":" + proof.JwtId, proof.AcceptedUntil))
            {
                return new SenderConstraintRefusedException("invalid_dpop_proof", "DPoP proof was already used", DpopReasons.Replayed, dpop: true);
            }
        }

        if (x5t is not null)
        {
            var certificate = await context.HttpContext.Connection.GetClientCertificateAsync(context.HttpContext.RequestAborted);
            if (certificate is null || !FixedEquals(Base64Url.EncodeToString(SHA256.HashData(certificate.RawData)), x5t))
            {
                return new SenderConstraintRefusedException("invalid_token", "token is bound to another client certificate", "CERTIFICATE_BINDING_MISMATCH", dpop: false);
            }
        }

        return null;
    }

    /// <summary>The challenge text for a refused proof: the reason in words, never library text.</summary>
    private static string Describe(string reason) => reason switch
    {
        DpopReasons.TargetMismatch => "DPoP proof names another method or URI",
        DpopReasons.Stale => "DPoP proof is too old or from the future",
        DpopReasons.AccessTokenHashMismatch => "DPoP proof ath does not match the access token",
        _ => "DPoP proof is not valid",
    };

    private static (string? Jkt, string? X5t) Confirmation(JsonWebToken? token)
    {
        if (token is null || !token.TryGetPayloadValue<JsonElement>("cnf", out var cnf) || cnf.ValueKind != JsonValueKind.Object)
        {
            return (null, null);
        }

        return (Member(cnf, "jkt"), Member(cnf, "x5t#S256"));

        static string? Member(JsonElement cnf, string name) =>
            cnf.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
    }

    private static bool FixedEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(a), Encoding.ASCII.GetBytes(b));

    private static partial class Log
    {
        [LoggerMessage(EventId = 5130, Level = LogLevel.Information, Message = "Refused a sender-constrained token: {Reason}")]
        public static partial void Refused(ILogger logger, string reason);
    }
}
