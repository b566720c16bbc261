namespace Broker.Server.Tests.Failover;

/// <summary>
/// Raises the thread pool's minimum worker threads while a failover test runs, then restores it.
/// The test process hosts two broker nodes, a resource server and the callers on one pool; while
/// the nodes' Redis connections follow a Sentinel switch, pool threads are blocked, and with the
/// default minimum (one per core) the whole process stalled for about 10 s (the test's own
/// socket polling included), which is the host's starvation, not Redis's failover time.
/// </summary>
internal sealed class ThreadPoolFloor : IDisposable
{
    private readonly int _workers;
    private readonly int _io;

    public ThreadPoolFloor(int workers = 64)
    {
        ThreadPool.GetMinThreads(out _workers, out _io);
        ThreadPool.SetMinThreads(Math.Max(_workers, workers), _io);
    }

    public void Dispose() => ThreadPool.SetMinThreads(_workers, _io);
}
