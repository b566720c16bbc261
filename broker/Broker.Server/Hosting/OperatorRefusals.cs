using Broker.Core.Errors;
using Google.Protobuf;
using Google.Rpc;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Infrastructure;
using Microsoft.AspNetCore.Authorization.Policy;

namespace Broker.Server.Hosting;

/// <summary>
/// Gives a refused admin call the same shape as every other refusal: a gRPC status with a
/// <c>google.rpc.ErrorInfo</c> reason (<c>OPERATOR_UNAUTHENTICATED</c>, or
/// <c>OPERATOR_ROLE_MISSING</c> naming the roles that would do), instead of a bare HTTP 401/403
/// that clients see as a status without a reason. Non-gRPC requests keep ASP.NET Core's answer.
/// </summary>
internal sealed class OperatorRefusals : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        if (authorizeResult.Succeeded || context.Response.HasStarted
            || context.Request.ContentType?.StartsWith("application/grpc", StringComparison.Ordinal) != true)
        {
            await _default.HandleAsync(next, context, policy, authorizeResult);
            return;
        }

        if (authorizeResult.Forbidden)
        {
            await OperatorAuthentication.AuditAsync(context, "ROLE_MISSING");
        }

        if (context.Items[OperatorAuthentication.RateLimitedItem] is BrokerException limited)
        {
            // Past the address's refusal budget: counted into refusals.aggregated, not one record each.
            var info = new ErrorInfo { Reason = limited.Reason, Domain = BrokerErrors.Domain };
            foreach (var (key, value) in limited.Metadata)
            {
                info.Metadata[key] = value;
            }

            Write(context, Grpc.Core.StatusCode.ResourceExhausted, limited.Message, info);
        }
        else if (authorizeResult.Forbidden)
        {
            var roles = authorizeResult.AuthorizationFailure?.FailedRequirements
                .OfType<RolesAuthorizationRequirement>()
                .SelectMany(r => r.AllowedRoles)
                .Distinct(StringComparer.Ordinal)
                .ToArray() ?? [];
            var info = new ErrorInfo { Reason = BrokerErrors.OperatorRoleMissing, Domain = BrokerErrors.Domain };
            info.Metadata["required_roles"] = string.Join(' ', roles);
            Write(context, Grpc.Core.StatusCode.PermissionDenied, $"This call needs the operator role {string.Join(" or ", roles)}.", info);
        }
        else
        {
            Write(
                context,
                Grpc.Core.StatusCode.Unauthenticated,
                "This call needs a valid operator bearer token from Broker:Operators:Authority.",
                new ErrorInfo { Reason = BrokerErrors.OperatorUnauthenticated, Domain = BrokerErrors.Domain });
        }
    }

    /// <summary>A trailers-only gRPC response: the status travels in the headers, with no body.</summary>
    private static void Write(HttpContext context, Grpc.Core.StatusCode code, string message, ErrorInfo info)
    {
        var status = new Google.Rpc.Status { Code = (int)code, Message = message, Details = { Google.Protobuf.WellKnownTypes.Any.Pack(info) } };
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/grpc";
        response.Headers["grpc-status"] = ((int)code).ToString(System.Globalization.CultureInfo.InvariantCulture);
        response.Headers["grpc-message"] = Uri.EscapeDataString(message);
        response.Headers["grpc-status-details-bin"] = Convert.ToBase64String(status.ToByteArray());
    }
}
