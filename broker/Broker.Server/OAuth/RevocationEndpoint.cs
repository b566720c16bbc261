using Broker.Core.Attestation;
using Broker.Core.Issuance;
using Broker.Core.Revocation;
using Broker.Revocation;
using Broker.Server.Hosting;
using Broker.Server.Services;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Broker.Server.OAuth;

/// <summary>
/// <c>POST /oauth2/revoke</c> (RFC 7009), answered by the same <see cref="Revoker"/> as the
/// gRPC <c>Revoke</c> call. Two callers: a responder (operator bearer token, role
/// <c>responder</c>) revokes any Broker token; an agent proving itself exactly as at the token
/// endpoint (an RFC 7523 <c>client_assertion</c> carrying its JWT-SVID or OIDC token, or its
/// X.509-SVID over mutual TLS) revokes tokens issued to it. As RFC 7009 section 2.2 says, a
/// token that is not a valid Broker token, or has already expired, is answered 200 and nothing
/// is written: there is nothing to revoke.
/// </summary>
internal sealed class RevocationEndpoint(
    CredentialIssuer issuer,
    Revoker revoker,
    TokenIntrospector introspector,
    IOptions<BrokerOptions> options,
    OAuthEndpointRunner runner)
{
    public const string ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

    public Task HandleAsync(HttpContext context) => runner.RunAsync(context, () => RevokeAsync(context));

    private async Task RevokeAsync(HttpContext context)
    {
        var form = await TokenForm.ReadAsync(context);
        var token = form["token"]
            ?? throw new OAuthRequestException(OAuthProtocol.InvalidRequest, OAuthReasons.RequestMalformed, "token is required.");
        if (form["token_type_hint"] is { } hint && hint != "access_token")
        {
            throw new OAuthRequestException(OAuthProtocol.UnsupportedTokenType, OAuthReasons.TokenTypeUnsupported, "Broker issues access tokens only (token_type_hint access_token).");
        }

        var call = CallContext.From(context);
        var reason = form["reason"];
        if (context.Request.Headers.Authorization.Count > 0)
        {
            var actor = await ResponderAsync(context);
            if (await RevocableAsync(token) is { } held)
            {
                await revoker.RevokeAsync([RevocationSelector.ForToken(held.Id)], actor, reason ?? "revoked through /oauth2/revoke", call, context.RequestAborted);
            }
        }
        else
        {
            var holder = await issuer.AttestWaiterAsync(await HolderProofAsync(form, context), call, context.RequestAborted);
            if (await RevocableAsync(token) is { } held)
            {
                await revoker.RevokeHeldTokenAsync(held.Id, held.Subject, holder, reason, call, context.RequestAborted);
            }
        }

        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.Headers.CacheControl = "no-store";
    }

    /// <summary>A valid, unexpired Broker token not yet revoked; null when there is nothing to do.</summary>
    private async Task<Microsoft.IdentityModel.JsonWebTokens.JsonWebToken?> RevocableAsync(string token)
    {
        var result = await introspector.IntrospectAsync(token);
        return result.Active ? result.Token : null;
    }

    private async Task<string> ResponderAsync(HttpContext context)
    {
        var result = await context.AuthenticateAsync(OperatorRoles.Scheme);
        if (!result.Succeeded || result.Principal is not { } principal)
        {
            throw new OAuthRequestException(OAuthProtocol.InvalidClient, Core.Errors.BrokerErrors.OperatorUnauthenticated, "The operator token was not accepted (docs/operations.md).");
        }

        if (!principal.IsInRole(OperatorRoles.Responder))
        {
            await OperatorAuthentication.AuditAsync(context, "ROLE_MISSING");
            throw new OAuthRequestException(OAuthProtocol.AccessDenied, Core.Errors.BrokerErrors.OperatorRoleMissing, $"Revoking another workload's token needs the '{OperatorRoles.Responder}' role.");
        }

        context.User = principal;
        return OperatorAuthentication.ActorOf(context, options.Value.Operators);
    }

    /// <summary>The agent's proof: an RFC 7523 client assertion, else its mutual-TLS certificate; null is refused as ATTESTATION_MISSING.</summary>
    private static async Task<AttestationEvidence?> HolderProofAsync(TokenForm form, HttpContext context)
    {
        var assertion = form["client_assertion"];
        var type = form["client_assertion_type"];
        if (assertion is null && type is null)
        {
            return await SubjectProof.ClientCertificateAsync(context);
        }

        if (assertion is null || type != ClientAssertionType)
        {
            throw new OAuthRequestException(OAuthProtocol.InvalidClient, OAuthReasons.RequestMalformed, $"client_assertion and client_assertion_type {ClientAssertionType} go together.");
        }

        return SubjectProof.FromJwt(assertion);
    }
}
