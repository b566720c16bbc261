using System.Net;
using System.Net.Sockets;

namespace Broker.Testing;

/// <summary>
/// An HTTP handler whose connections leave from a chosen local address (e.g. 127.0.0.2 on
/// loopback), so a broker on 127.0.0.1 sees a second, distinct peer.
/// </summary>
public static class LocalAddressHandler
{
    public static SocketsHttpHandler Create(IPAddress local) => new()
    {
        EnableMultipleHttp2Connections = true,
        ConnectCallback = async (context, cancellationToken) =>
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                socket.Bind(new IPEndPoint(local, 0));
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    };
}
