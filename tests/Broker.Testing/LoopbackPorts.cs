using System.Net;
using System.Net.Sockets;

namespace Broker.Testing;

/// <summary>
/// Free loopback ports for the servers tests start. The kernel's own "port 0" answer comes
/// from the ephemeral range, which every outgoing connection on the machine also draws from,
/// so a port it handed out can be the local end of some client socket by the time a child
/// process binds it. These ports come from below that range, walked from a random start per
/// test process so parallel test assemblies rarely meet, each checked by binding it.
/// </summary>
public static class LoopbackPorts
{
    private const int First = 10_000;
    private const int Count = 22_000;
    private static int _next = Random.Shared.Next(Count);

    public static int Next()
    {
        for (var i = 0; i < Count; i++)
        {
            var port = First + (int)((uint)Interlocked.Increment(ref _next) % Count);
            if (IsFree(port))
            {
                return port;
            }
        }

        throw new InvalidOperationException($"No free loopback port in {First}-{First + Count - 1}.");
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.ExclusiveAddressUse = true;
            socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
