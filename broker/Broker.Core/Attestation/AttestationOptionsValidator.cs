using Microsoft.Extensions.Options;

namespace Broker.Core.Attestation;

/// <summary>Refuses to start with attestation limits that would weaken or disable a check.</summary>
public sealed class AttestationOptionsValidator : IValidateOptions<AttestationOptions>
{
    public ValidateOptionsResult Validate(string? name, AttestationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.Audience))
        {
            failures.Add("Attestation:Audience is required: proofs must be addressed to this broker.");
        }

        if (options.ClockSkew < TimeSpan.Zero || options.ClockSkew > TimeSpan.FromMinutes(5))
        {
            failures.Add("Attestation:ClockSkew must be between 0 and 5 minutes.");
        }

        if (options.MaxProofLifetime <= TimeSpan.Zero || options.MaxProofLifetime > TimeSpan.FromDays(1))
        {
            failures.Add("Attestation:MaxProofLifetime must be more than 0 and at most 1 day.");
        }

        if (options.MaxProofBytes is < 256 or > 64 * 1024)
        {
            failures.Add("Attestation:MaxProofBytes must be between 256 and 65536.");
        }

        if (options.ValidatedProofCacheSize < 0)
        {
            failures.Add("Attestation:ValidatedProofCacheSize may not be negative (0 turns the cache off).");
        }

        if (options.BundleFetchTimeout <= TimeSpan.Zero || options.BundleFetchTimeout > TimeSpan.FromMinutes(1))
        {
            failures.Add("Attestation:BundleFetchTimeout must be more than 0 and at most 1 minute.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
