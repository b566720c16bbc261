using Broker.Testing;

namespace Broker.Server.Tests.Infrastructure;

/// <summary>
/// The scenario's trust domain, CA and policy written to disk, without a node: for tests that
/// start (or fail to start) nodes of their own with <see cref="BrokerTestHost"/>.
/// </summary>
public sealed class PolicyOnDisk : IDisposable
{
    private readonly TestTrustDomain _trust = new("example.org");
    private readonly TestPki _pki = TestPki.Create("example.org");

    public PolicyOnDisk()
    {
        Path = System.IO.Path.Combine(_trust.Directory, "policy.yaml");
        File.WriteAllText(Path, BrokerScenario.Policy(_trust.WriteJwksFile(), _pki.WriteRootBundle()));
    }

    public string Path { get; }

    /// <summary>Starts a node on this policy with <paramref name="settings"/> over the test defaults.</summary>
    public Task<BrokerTestHost> StartAsync(IReadOnlyDictionary<string, string?> settings) =>
        BrokerTestHost.StartAsync(new BrokerTestHostOptions { PolicyPath = Path, Settings = settings });

    public void Dispose()
    {
        _trust.Dispose();
        _pki.Dispose();
    }
}
