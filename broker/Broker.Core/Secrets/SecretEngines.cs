using System.Collections.Concurrent;
using Broker.Core.Policy;

namespace Broker.Core.Secrets;

/// <summary>
/// The running engines, one per <c>secret_engines:</c> entry, built on first use by the factory
/// for its type. An engine dropped from policy is kept, so leases it issued can still be ended.
/// </summary>
public sealed class SecretEngines(IEnumerable<ISecretEngineFactory> factories) : IAsyncDisposable
{
    private readonly Dictionary<string, ISecretEngineFactory> _factories = factories.ToDictionary(f => f.Type, StringComparer.Ordinal);
    private readonly ConcurrentDictionary<SecretEnginePolicy, ISecretEngine> _engines = new();
    private readonly ConcurrentDictionary<string, ISecretEngine> _latestByName = new(StringComparer.Ordinal);

    /// <summary>The engine for <paramref name="engine"/> as policy declares it now.</summary>
    public ISecretEngine For(SecretEnginePolicy engine)
    {
        var running = _engines.GetOrAdd(engine, e => _factories.TryGetValue(e.Type, out var factory)
            ? factory.Create(e)
            : throw SecretErrors.EngineUnavailable(e.Name, $"this broker has no '{e.Type}' engine installed"));
        _latestByName[engine.Name] = running;
        return running;
    }

    /// <summary>The engine that ends a lease: as policy declares it now, else the last one this node ran under that name.</summary>
    public ISecretEngine? ForLease(BrokerPolicy policy, string engineName) =>
        policy.FindSecretEngine(engineName) is { } declared ? For(declared) : _latestByName.GetValueOrDefault(engineName);

    public async ValueTask DisposeAsync()
    {
        foreach (var engine in _engines.Values)
        {
            await engine.DisposeAsync();
        }
    }
}
