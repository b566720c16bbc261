namespace Broker.Server.Hosting;

/// <summary>
/// One setting, <c>Broker:MaxTokenLifetime</c>, bounds every token; everything that must outlive
/// a token (revocation entries, the revocation log, retired signing keys) is derived from it.
/// A retention configured on its own may be longer, never shorter: a revocation that lapses
/// before the token it revokes would make that token valid again.
/// </summary>
public static class TokenLifetimeSettings
{
    public const string MaxTokenLifetimeKey = "Broker:MaxTokenLifetime";
    public const string RevocationRetentionKey = "Broker:Revocation:MaxTokenLifetime";

    /// <summary>Longest accepted <c>Broker:MaxTokenLifetime</c>: tokens are minutes, not days.</summary>
    public static readonly TimeSpan Ceiling = TimeSpan.FromHours(24);

    /// <summary>Derives every retention not configured on its own from the token lifetime.</summary>
    public static void Apply(BrokerOptions options, IConfiguration configuration)
    {
        if (!configuration.GetSection(RevocationRetentionKey).Exists())
        {
            options.Revocation.MaxTokenLifetime = options.MaxTokenLifetime;
        }
    }

    public static IEnumerable<string> Problems(BrokerOptions options)
    {
        if (options.MaxTokenLifetime <= TimeSpan.Zero || options.MaxTokenLifetime > Ceiling)
        {
            yield return $"BRK1050: {MaxTokenLifetimeKey} must be more than 0 and at most 24:00:00 (it is {options.MaxTokenLifetime}).";
        }

        if (options.Revocation.MaxTokenLifetime < options.MaxTokenLifetime)
        {
            yield return $"BRK1051: {RevocationRetentionKey} ({options.Revocation.MaxTokenLifetime}) is shorter than {MaxTokenLifetimeKey} ({options.MaxTokenLifetime}): "
                + "a revocation would lapse while the token it revokes is still valid. Remove the setting (it defaults to the token lifetime) or make it at least as long.";
        }
    }
}
