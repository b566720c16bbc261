namespace Broker.ResourceServer.Internal;

/// <summary>Why a bound token was refused; becomes the 401's <c>WWW-Authenticate</c> challenge.</summary>
internal sealed class SenderConstraintRefusedException(string error, string description, string reason, bool dpop) : Exception(description)
{
    public string Error { get; } = error;

    public string Reason { get; } = reason;

    public bool Dpop { get; } = dpop;
}
