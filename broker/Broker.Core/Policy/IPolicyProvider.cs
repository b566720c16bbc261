namespace Broker.Core.Policy;

/// <summary>The policy in force. A bad edit never replaces a good policy.</summary>
public interface IPolicyProvider
{
    BrokerPolicy Current { get; }

    /// <summary>Raised after a new, valid policy has replaced the previous one.</summary>
    event Action<BrokerPolicy>? Changed;
}
