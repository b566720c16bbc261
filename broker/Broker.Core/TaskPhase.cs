namespace Broker.Core;

/// <summary>The phases a task moves through; each has its own scopes, TTL and gates in policy.</summary>
public enum TaskPhase
{
    Planning = 1,
    Execution = 2,
    Recovery = 3,
}

public static class TaskPhaseNames
{
    public static string ToWire(this TaskPhase phase) => phase switch
    {
        TaskPhase.Planning => "planning",
        TaskPhase.Execution => "execution",
        TaskPhase.Recovery => "recovery",
        _ => throw new ArgumentOutOfRangeException(nameof(phase)),
    };

    public static TaskPhase Parse(string? text) =>
        TryParse(text, out var phase) ? phase : throw new FormatException($"'{text}' is not a phase.");

    public static bool TryParse(string? text, out TaskPhase phase)
    {
        switch (text)
        {
            case "planning": phase = TaskPhase.Planning; return true;
            case "execution": phase = TaskPhase.Execution; return true;
            case "recovery": phase = TaskPhase.Recovery; return true;
            default: phase = default; return false;
        }
    }
}
