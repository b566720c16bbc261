using Broker.Core.Policy;

namespace Broker.Testing;

/// <summary>
/// Test double for <see cref="IPolicyProvider"/>: holds a policy in memory and raises
/// <see cref="Changed"/> when a test replaces it (as a hot reload would).
/// </summary>
public sealed class StaticPolicyProvider : IPolicyProvider
{
    public StaticPolicyProvider(BrokerPolicy policy) => Current = policy;

    /// <summary>A policy that trusts exactly the given sources and has no agent rules.</summary>
    public StaticPolicyProvider(IEnumerable<SpiffeTrustDomainPolicy>? domains = null, IEnumerable<OidcIssuerPolicy>? issuers = null)
        : this(PolicyWithTrust(domains, issuers))
    {
    }

    public BrokerPolicy Current { get; private set; }

    public event Action<BrokerPolicy>? Changed;

    /// <summary>Swaps the policy and raises <see cref="Changed"/>.</summary>
    public void Replace(BrokerPolicy policy)
    {
        Current = policy;
        Changed?.Invoke(policy);
    }

    /// <summary>Swaps in a policy that trusts exactly the given sources and raises <see cref="Changed"/>.</summary>
    public void ReplaceTrust(IEnumerable<SpiffeTrustDomainPolicy>? domains = null, IEnumerable<OidcIssuerPolicy>? issuers = null) =>
        Replace(PolicyWithTrust(domains, issuers));

    /// <summary>A minimal valid policy around the given trust sources.</summary>
    public static BrokerPolicy PolicyWithTrust(IEnumerable<SpiffeTrustDomainPolicy>? domains = null, IEnumerable<OidcIssuerPolicy>? issuers = null) => new()
    {
        Digest = "sha256:" + Guid.NewGuid().ToString("N") + Guid.NewGuid().ToString("N"),
        Source = "test",
        Trust = new TrustPolicy([.. domains ?? []], [.. issuers ?? []]),
        Agents = [],
    };
}
