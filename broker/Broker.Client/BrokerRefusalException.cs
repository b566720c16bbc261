using Grpc.Core;

namespace Broker.Client;

/// <summary>
/// Thrown by <see cref="BrokerAgentClient"/> when a call fails: Broker refused it, or could
/// not be reached (<see cref="BrokerRefusal.IsUnavailable"/>). The message never contains a token.
/// </summary>
public sealed class BrokerRefusalException : Exception
{
    /// <summary>Wraps the failed call's <see cref="RpcException"/>.</summary>
    public BrokerRefusalException(RpcException exception)
        : this(BrokerRefusal.From(exception), exception)
    {
    }

    /// <summary>Creates the exception for a refusal already read from a call.</summary>
    public BrokerRefusalException(BrokerRefusal refusal, Exception? innerException = null)
        : base((refusal ?? throw new ArgumentNullException(nameof(refusal))).ToString(), innerException)
    {
        Refusal = refusal;
    }

    /// <summary>The status, stable reason code and metadata of the refusal.</summary>
    public BrokerRefusal Refusal { get; }
}
