namespace Broker.Server.Hosting;

/// <summary>
/// One setting, <c>Broker:ClockSkew</c>, is the clock difference Broker tolerates everywhere it
/// compares someone else's time with its own: attestation proofs and SETs (exp, nbf, iat),
/// runtime signals (observed_at), revocation (issued-before times, entry retention), operator
/// tokens and retired signing keys. Setting it per component is refused: two skews would make
/// the same token valid to one check and expired to the next.
/// </summary>
public static class ClockSkewSettings
{
    public const string Key = "Broker:ClockSkew";

    /// <summary>Per-component spellings that earlier versions read; now refused.</summary>
    public static readonly string[] RetiredKeys = ["Broker:Revocation:ClockSkew", "Broker:Attestation:ClockSkew", "Broker:Risk:ClockSkew"];

    public static readonly TimeSpan Ceiling = TimeSpan.FromMinutes(5);

    /// <summary>Copies the one skew into the options objects that carry it.</summary>
    public static void Apply(BrokerOptions options) => options.Revocation.ClockSkew = options.ClockSkew;

    public static IEnumerable<string> Problems(BrokerOptions options, IConfiguration configuration)
    {
        if (options.ClockSkew < TimeSpan.Zero || options.ClockSkew > Ceiling)
        {
            yield return $"BRK1080: {Key} must be between 00:00:00 and 00:05:00 (it is {options.ClockSkew}).";
        }

        foreach (var retired in RetiredKeys.Where(k => configuration.GetSection(k).Exists()))
        {
            yield return $"BRK1081: {retired} is not a setting; the clock skew is set once, as {Key}, for every check.";
        }
    }
}
