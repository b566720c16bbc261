using Microsoft.Extensions.Options;

namespace Broker.ResourceServer.Internal;

/// <summary>
/// Start-up check of <see cref="BrokerJwtBearerOptions"/>. Each message starts with a stable id
/// (BRS0xx, catalogued in docs/resource-server.md) so operators can look it up.
/// </summary>
internal sealed class BrokerJwtBearerOptionsValidator : IValidateOptions<BrokerJwtBearerOptions>
{
    public ValidateOptionsResult Validate(string? name, BrokerJwtBearerOptions options)
    {
        var failures = new List<string>();
        if (!Uri.TryCreate(options.Authority, UriKind.Absolute, out var authority) || (authority.Scheme != Uri.UriSchemeHttps && authority.Scheme != Uri.UriSchemeHttp))
        {
            failures.Add("BRS001: Authority must be the broker's issuer URL (absolute http or https).");
        }
        else if (options.RequireHttpsMetadata && authority.Scheme != Uri.UriSchemeHttps)
        {
            failures.Add("BRS002: Authority must use https while RequireHttpsMetadata is true (set it false only for a loopback or dev broker).");
        }

        if (string.IsNullOrWhiteSpace(options.Audience))
        {
            failures.Add("BRS003: Audience is required: it is this resource server's identifier, the aud claim tokens for it carry.");
        }

        if (!Uri.TryCreate(options.RevocationAddress, UriKind.Absolute, out var revocation) || (revocation.Scheme != Uri.UriSchemeHttps && revocation.Scheme != Uri.UriSchemeHttp))
        {
            failures.Add("BRS004: RevocationAddress must be the broker's gRPC address (absolute http or https); revocation checking cannot be turned off.");
        }
        else if (options.RequireHttpsMetadata && revocation.Scheme != Uri.UriSchemeHttps)
        {
            failures.Add("BRS005: RevocationAddress must use https while RequireHttpsMetadata is true.");
        }

        if (options.StalenessBound <= TimeSpan.Zero)
        {
            failures.Add("BRS006: StalenessBound must be positive.");
        }

        if (!Enum.IsDefined(options.StaleStance))
        {
            failures.Add("BRS007: StaleStance must be FailClosed or FailOpen.");
        }

        if (options.ReconnectDelayMin <= TimeSpan.Zero || options.ReconnectDelayMax < options.ReconnectDelayMin)
        {
            failures.Add("BRS008: ReconnectDelayMin must be positive and no more than ReconnectDelayMax.");
        }

        if (options.ClockSkew < TimeSpan.Zero || options.ClockSkew > TimeSpan.FromMinutes(5))
        {
            failures.Add("BRS009: ClockSkew must be between 0 and 5 minutes.");
        }

        if (options.PruneInterval <= TimeSpan.Zero)
        {
            failures.Add("BRS010: PruneInterval must be positive.");
        }

        if (options.MaxTokenLifetime <= TimeSpan.Zero || options.MaxTokenLifetime > TimeSpan.FromHours(24))
        {
            failures.Add("BRS011: MaxTokenLifetime must be more than 0 and at most 24 hours (the broker's Broker:MaxTokenLifetime).");
        }

        if (string.IsNullOrWhiteSpace(options.RevocationTokenFile) == (options.RevocationTokenProvider is null))
        {
            failures.Add("BRS012: set exactly one of RevocationTokenFile and RevocationTokenProvider: the broker's revocation channel admits authenticated resource servers only.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
