using Microsoft.Extensions.Options;

namespace Broker.Core.Refusals;

/// <summary>
/// The refusal budget (<c>Broker:RateLimit</c>, SECURITY.md): how many refusals each peer
/// address, or each attested workload, has audited one record each per window. Past it, a
/// refusal is answered <c>RATE_LIMITED</c> and only counted.
/// </summary>
public sealed class RateLimitOptions
{
    public const string Section = "Broker:RateLimit";

    /// <summary>Off means every refusal is audited on its own, as without a budget (not for production).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Refusals audited one record each per window, per peer address or attested workload.</summary>
    public int PermitsPerWindow { get; set; } = 30;

    /// <summary>How often the budget refills, and how long one aggregated record covers.</summary>
    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Refusals past the budget that wait for the next permit (and are then audited with their
    /// reason) instead of being answered <c>RATE_LIMITED</c> at once. 0: none wait.
    /// </summary>
    public int QueueLimit { get; set; }

    /// <summary>
    /// Past its budget, a caller's proofs are refused <c>RATE_LIMITED</c> without a signature
    /// check unless this node validated that exact proof before (so a flood cannot spend the
    /// node's CPU). True keeps checking them, so a good agent presenting a new proof from the
    /// same address as a flooder still attests; set it when callers reach the broker through a
    /// proxy that hides their addresses. A non-zero <see cref="QueueLimit"/> also keeps checking.
    /// </summary>
    public bool CheckProofsPastBudget { get; set; }
}

/// <summary>Refuses a budget that would not bound the audit log, with the setting's name and a BRK id.</summary>
public sealed class RateLimitOptionsValidator : IValidateOptions<RateLimitOptions>
{
    public const int MaxPermitsPerWindow = 100_000;
    public const int MaxQueueLimit = 1_000;

    public ValidateOptionsResult Validate(string? name, RateLimitOptions options)
    {
        var failures = new List<string>();
        if (options.PermitsPerWindow is < 1 or > MaxPermitsPerWindow)
        {
            failures.Add($"BRK1090: Broker:RateLimit:PermitsPerWindow must be from 1 to {MaxPermitsPerWindow} (refusals audited one record each per peer and window).");
        }

        if (options.Window < TimeSpan.FromSeconds(1) || options.Window > TimeSpan.FromHours(1))
        {
            failures.Add("BRK1091: Broker:RateLimit:Window must be from 00:00:01 to 01:00:00.");
        }

        if (options.QueueLimit is < 0 or > MaxQueueLimit)
        {
            failures.Add($"BRK1092: Broker:RateLimit:QueueLimit must be from 0 to {MaxQueueLimit} (0 answers RATE_LIMITED at once).");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
