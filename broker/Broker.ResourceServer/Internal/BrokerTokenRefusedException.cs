namespace Broker.ResourceServer.Internal;

/// <summary>
/// Why an otherwise valid token was refused; its <see cref="Description"/> becomes the
/// <c>error_description</c> of the 401's <c>WWW-Authenticate</c> header.
/// </summary>
internal sealed class BrokerTokenRefusedException(string description) : Exception(description)
{
    public const string Revoked = "token revoked";
    public const string StateUnknown = "revocation state unknown";
    public const string NotBrokerToken = "token lacks broker claims";
    public const string LifetimeTooLong = "token lifetime exceeds the broker's maximum";

    public string Description { get; } = description;
}
