namespace Broker.Server.Tests.Failover;

/// <summary>A refusal budget no failover workload reaches, so every refusal keeps its precise reason.</summary>
internal static class FailoverBudget
{
    public const string Key = "Broker:RateLimit:PermitsPerWindow";
    public const string Permits = "100000";
}
