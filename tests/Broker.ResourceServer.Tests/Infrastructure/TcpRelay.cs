using System.Net;
using System.Net.Sockets;

namespace Broker.ResourceServer.Tests.Infrastructure;

/// <summary>
/// A loopback TCP relay in front of a broker's gRPC port, so a test can cut the revocation
/// stream (and refuse new connections) without stopping the broker.
/// </summary>
public sealed class TcpRelay : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _lock = new();
    private readonly List<TcpClient> _open = [];
    private readonly Task _accepting;
    private volatile bool _refusing;

    public TcpRelay(int targetPort)
    {
        _targetPort = targetPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptAsync();
    }

    public int Port { get; }

    public string Address => $"http://127.0.0.1:{Port}";

    /// <summary>Cuts every open connection and refuses new ones until <see cref="Restore"/>.</summary>
    public void Sever()
    {
        _refusing = true;
        lock (_lock)
        {
            foreach (var client in _open)
            {
                client.Client.Close(0);
            }

            _open.Clear();
        }
    }

    public void Restore() => _refusing = false;

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient inbound;
            try
            {
                inbound = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }

            if (_refusing)
            {
                inbound.Client.Close(0);
                continue;
            }

            _ = RelayAsync(inbound);
        }
    }

    private async Task RelayAsync(TcpClient inbound)
    {
        using var outbound = new TcpClient();
        try
        {
            await outbound.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
            lock (_lock)
            {
                _open.Add(inbound);
                _open.Add(outbound);
            }

            using var both = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            var a = inbound.GetStream().CopyToAsync(outbound.GetStream(), both.Token);
            var b = outbound.GetStream().CopyToAsync(inbound.GetStream(), both.Token);
            await Task.WhenAny(a, b);
            await both.CancelAsync();
        }
        catch (Exception)
        {
            // A severed or refused connection is what this relay is for.
        }
        finally
        {
            lock (_lock)
            {
                _open.Remove(inbound);
                _open.Remove(outbound);
            }

            inbound.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        Sever();
        await _accepting;
        _stop.Dispose();
    }
}
