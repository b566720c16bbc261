using Microsoft.Extensions.Options;

namespace Broker.Server.OAuth;

/// <summary>The OAuth front door (<c>Broker:OAuth</c>, docs/oauth.md).</summary>
public sealed class OAuthOptions
{
    public const string Section = "Broker:OAuth";

    /// <summary>
    /// The least time between two polls of one pending approval at the token endpoint; a
    /// faster poll is answered <c>slow_down</c> (RFC 8628 section 3.5). Sent as <c>interval</c>.
    /// </summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>DPoP proofs at the token endpoint (<c>Broker:OAuth:Dpop</c>).</summary>
    public Core.Issuance.DpopOptions Dpop { get; set; } = new();
}

internal sealed class OAuthOptionsValidator : IValidateOptions<OAuthOptions>
{
    public ValidateOptionsResult Validate(string? name, OAuthOptions options) =>
        options.PollInterval < TimeSpan.FromSeconds(1) || options.PollInterval > TimeSpan.FromMinutes(1) || options.PollInterval.Ticks % TimeSpan.TicksPerSecond != 0
            ? ValidateOptionsResult.Fail("BRK1100: Broker:OAuth:PollInterval must be whole seconds from 00:00:01 to 00:01:00 (it is sent to clients as interval).")
            : ValidateOptionsResult.Success;
}
