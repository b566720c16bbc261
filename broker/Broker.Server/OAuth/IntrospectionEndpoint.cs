using System.Buffers.Text;
using System.Text.Json;
using Broker.Core.Revocation;
using Broker.Server.Hosting;

namespace Broker.Server.OAuth;

/// <summary>
/// <c>POST /oauth2/introspect</c> (RFC 7662): the gRPC <c>Introspect</c> call for resource
/// servers that speak HTTP. Same caller check (<see cref="ResourceServerAuthenticator"/>), same
/// freshness rule (a stale node answers 503, never a guess) and the same
/// <see cref="TokenIntrospector"/> answer.
/// </summary>
internal sealed class IntrospectionEndpoint(ResourceServerAuthenticator authenticator, RevocationFeed feed, TokenIntrospector introspector, OAuthEndpointRunner runner)
{
    public Task HandleAsync(HttpContext context) => runner.RunAsync(context, () => IntrospectAsync(context));

    private async Task IntrospectAsync(HttpContext context)
    {
        await authenticator.AuthenticateAsync(context);
        var form = await TokenForm.ReadAsync(context);
        var token = form["token"]
            ?? throw new OAuthRequestException(OAuthProtocol.InvalidRequest, OAuthReasons.RequestMalformed, "token is required.");
        feed.EnsureCurrent();
        var result = await introspector.IntrospectAsync(token);
        await OAuthResponse.WriteAsync(context, StatusCodes.Status200OK, w =>
        {
            w.WriteBoolean("active", result.Active);
            if (!result.Active)
            {
                // RFC 7662 section 2.2: nothing about an inactive token but why (to this authenticated caller).
                w.WriteString("broker_inactive_reason", result.InactiveReason);
                return;
            }

            var jwt = result.Token!;
            var cnf = Confirmation(jwt.EncodedPayload);

            // RFC 9449 section 6.2: a key-bound token is a DPoP token, presented as such.
            w.WriteString("token_type", cnf is { } bound && bound.TryGetProperty("jkt", out _) ? "DPoP" : "Bearer");
            w.WriteString("scope", string.Join(' ', result.Scopes));
            w.WriteString("client_id", jwt.Subject);
            w.WriteString("sub", jwt.Subject);
            w.WriteString("aud", jwt.Audiences.FirstOrDefault());
            w.WriteString("iss", jwt.Issuer);
            w.WriteString("jti", jwt.Id);
            w.WriteNumber("iat", new DateTimeOffset(jwt.IssuedAt, TimeSpan.Zero).ToUnixTimeSeconds());
            w.WriteNumber("exp", new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero).ToUnixTimeSeconds());
            w.WriteString("task_id", result.TaskId);
            w.WriteString("phase", result.Phase);
            if (cnf is { } confirmation)
            {
                // RFC 8705 section 3.2 and RFC 9449 section 6.2: a bound token says what it is bound to.
                w.WritePropertyName("cnf");
                confirmation.WriteTo(w);
            }
        });
    }

    private static JsonElement? Confirmation(string encodedPayload)
    {
        using var payload = JsonDocument.Parse(Base64Url.DecodeFromChars(encodedPayload));
        return payload.RootElement.TryGetProperty("cnf", out var cnf) && cnf.ValueKind == JsonValueKind.Object ? cnf.Clone() : null;
    }
}
