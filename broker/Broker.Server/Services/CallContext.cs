using Broker.Core.Issuance;
using Grpc.Core;

namespace Broker.Server.Services;

internal static class CallContext
{
    public const string CorrelationHeader = "x-correlation-id";

    /// <summary>The caller's correlation id if it is well-formed, else a fresh one; and the peer address.</summary>
    public static RequestContext From(ServerCallContext context)
    {
        var supplied = context.RequestHeaders.GetValue(CorrelationHeader);
        var correlationId = IsWellFormed(supplied) ? supplied! : Guid.NewGuid().ToString("N");
        return new RequestContext(correlationId, context.Peer);
    }

    private static bool IsWellFormed(string? value)
    {
        if (string.IsNullOrEmpty(value) || value.Length > 64)
        {
            return false;
        }

        foreach (var c in value)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not '-' and not '_' and not '.')
            {
                return false;
            }
        }

        return true;
    }
}
