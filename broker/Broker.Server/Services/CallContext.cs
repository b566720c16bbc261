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

    /// <summary>The same for a plain HTTP request (the OAuth door), with the peer written as gRPC writes it.</summary>
    public static RequestContext From(HttpContext context)
    {
        var supplied = context.Request.Headers[CorrelationHeader].ToString();
        var correlationId = IsWellFormed(supplied) ? supplied : Guid.NewGuid().ToString("N");
        var connection = context.Connection;
        var peer = connection.RemoteIpAddress switch
        {
            null => null,
            { AddressFamily: System.Net.Sockets.AddressFamily.InterNetworkV6 } v6 => $"ipv6:[{v6}]:{connection.RemotePort}",
            var v4 => $"ipv4:{v4}:{connection.RemotePort}",
        };
        return new RequestContext(correlationId, peer);
    }

    private static bool IsWellFormed(string? value)
    {
        // Same rule brokerctl applies: 1 to 128 printable ASCII characters (JSON escaping handles the rest).
        if (string.IsNullOrEmpty(value) || value.Length > 128)
        {
            return false;
        }

        foreach (var c in value)
        {
            if (c < 0x21 || c > 0x7E)
            {
                return false;
            }
        }

        return true;
    }
}
