using System.Net;
using System.Net.Sockets;

namespace Broker.Core.Refusals;

/// <summary>
/// The address a refusal budget is charged to. Ports are dropped (a new connection is not a new
/// caller), IPv4-mapped IPv6 is IPv4, and IPv6 counts per /64: one host usually holds a whole
/// /64, so a budget per address would be no budget at all.
/// </summary>
public static class PeerAddress
{
    /// <summary>What is charged when the transport gave no address.</summary>
    public const string Unknown = "unknown";

    /// <summary>Accepts gRPC's peer form (<c>ipv4:10.0.0.1:5000</c>, <c>ipv6:[2001:db8::1]:443</c>) and bare addresses.</summary>
    public static string Of(string? peer)
    {
        if (string.IsNullOrEmpty(peer))
        {
            return Unknown;
        }

        var text = peer.AsSpan();
        if (text.StartsWith("ipv4:", StringComparison.Ordinal))
        {
            text = text[5..];
            var colon = text.LastIndexOf(':');
            text = colon > 0 ? text[..colon] : text;
        }
        else if (text.StartsWith("ipv6:", StringComparison.Ordinal))
        {
            text = text[5..];
            if (text.StartsWith("[") && text.IndexOf(']') is > 0 and var close)
            {
                text = text[1..close];
            }
        }

        return IPAddress.TryParse(text, out var address) ? Of(address) : Unknown;
    }

    public static string Of(IPAddress? address)
    {
        if (address is null)
        {
            return Unknown;
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address.ToString();
        }

        var bytes = address.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return new IPAddress(bytes) + "/64";
    }
}
