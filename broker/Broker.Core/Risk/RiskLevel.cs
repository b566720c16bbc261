namespace Broker.Core.Risk;

/// <summary>The runtime-protection layer's verdict on an agent or task, in increasing order.</summary>
public enum RiskLevel
{
    None = 0,
    Low = 1,
    Medium = 2,
    High = 3,
    Critical = 4,
}

/// <summary>What a phase does when no fresh risk is known for the requester, or the risk state cannot be read.</summary>
public enum UnknownRiskStance
{
    Allow,
    Deny,
}

public static class RiskLevels
{
    public static string ToWire(this RiskLevel level) => level switch
    {
        RiskLevel.None => "none",
        RiskLevel.Low => "low",
        RiskLevel.Medium => "medium",
        RiskLevel.High => "high",
        RiskLevel.Critical => "critical",
        _ => throw new ArgumentOutOfRangeException(nameof(level)),
    };

    public static bool TryParse(string? text, out RiskLevel level)
    {
        switch (text)
        {
            case "none": level = RiskLevel.None; return true;
            case "low": level = RiskLevel.Low; return true;
            case "medium": level = RiskLevel.Medium; return true;
            case "high": level = RiskLevel.High; return true;
            case "critical": level = RiskLevel.Critical; return true;
            default: level = default; return false;
        }
    }

    /// <summary>The ceiling a phase has when policy does not set one: execution tolerates less.</summary>
    public static RiskLevel DefaultCeiling(TaskPhase phase) => phase == TaskPhase.Execution ? RiskLevel.Medium : RiskLevel.High;

    /// <summary>When no fresh signal is known: execution fails closed, planning and recovery proceed.</summary>
    public static UnknownRiskStance DefaultStance(TaskPhase phase) => phase == TaskPhase.Execution ? UnknownRiskStance.Deny : UnknownRiskStance.Allow;
}
