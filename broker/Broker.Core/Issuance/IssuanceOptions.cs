namespace Broker.Core.Issuance;

public sealed class IssuanceOptions
{
    /// <summary>The <c>iss</c> of every token; resource servers use it as their Authority (required).</summary>
    public string Issuer { get; set; } = "";

    /// <summary>Hard ceiling on any token lifetime, whatever policy says; the host sets it from <c>Broker:MaxTokenLifetime</c>.</summary>
    public TimeSpan MaxTokenLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How long an ended or idle task is remembered, so an ended task id cannot be reused.</summary>
    public TimeSpan TaskRetention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>
    /// Most tasks one workload may hold at once (ended ones count until their retention ends):
    /// task ids are one namespace shared by every workload, so this bounds what one workload can
    /// claim and how many task records it can make Redis keep.
    /// </summary>
    public int MaxTasksPerWorkload { get; set; } = 100_000;

    public const int MaxTaskIdLength = 128;
    public const int MaxScopes = 64;
    public const int MaxScopeLength = 128;
    public const int MaxAudienceLength = 256;
    public const int MaxJustificationLength = 512;
    public const int MaxPopKeyLength = 2048;
}
