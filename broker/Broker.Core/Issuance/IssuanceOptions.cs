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

    /// <summary>
    /// Decide a repeat issuance (a task this node confirmed in shared state, same owner, same
    /// phase) from memory instead of asking Redis. Faster, with a weaker promise when Redis
    /// loses its data or stops: see docs/design/issuance-state.md.
    /// </summary>
    public bool RepeatFromMemory { get; set; }

    /// <summary>Most tasks remembered at once with <see cref="RepeatFromMemory"/>; beyond it new tasks ask Redis every time.</summary>
    public int RepeatFromMemoryMaxTasks { get; set; } = 100_000;

    public const int MaxTaskIdLength = 128;
    public const int MaxScopes = 64;
    public const int MaxScopeLength = 128;
    public const int MaxAudienceLength = 256;
    public const int MaxJustificationLength = 512;
    public const int MaxPopKeyLength = 2048;
}
