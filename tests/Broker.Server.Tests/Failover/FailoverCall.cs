using Grpc.Core;

namespace Broker.Server.Tests.Failover;

/// <summary>What a failover workload's caller asked for.</summary>
internal enum CallKind
{
    Issue,
    RevokeToken,
    RevokeTask,

    /// <summary>Issuance for a task whose revocation just returned OK at the other node: must be refused.</summary>
    IssueRevokedTask,
}

/// <summary>One call of a failover workload, as the caller saw it (times from the workload's start).</summary>
internal sealed record Call(int Node, int Lane, CallKind Kind, string Task, double StartMs, double EndMs, StatusCode Status, string? Reason, string? TokenId = null, string? AccessToken = null, string? RevocationId = null)
{
    public bool Ok => Status == StatusCode.OK;

    public string Outcome => Ok ? "OK" : $"{Status}/{Reason ?? "no reason"}";
}

/// <summary>What every failover verifier asks of the recorded calls.</summary>
internal static class FailoverCalls
{
    /// <summary>Refusals the catalogue (docs/errors.md) names for a Redis outage or a revoked task.</summary>
    private static readonly HashSet<(StatusCode, string)> Precise =
    [
        (StatusCode.Unavailable, "STATE_UNAVAILABLE"),
        (StatusCode.Unavailable, "REVOCATION_STATE_UNKNOWN"),
        (StatusCode.Unavailable, "RISK_STATE_UNAVAILABLE"),
        (StatusCode.FailedPrecondition, "TASK_ENDED"),
    ];

    public static bool IsPrecise(Call call) => call.Reason is { } reason && Precise.Contains((call.Status, reason));

    /// <summary>The first call of <paramref name="kinds"/> at <paramref name="node"/> that started after <paramref name="afterMs"/> and succeeded.</summary>
    public static Call? FirstOkAfter(IEnumerable<Call> calls, int node, double afterMs, params CallKind[] kinds) =>
        calls.Where(c => c.Node == node && kinds.Contains(c.Kind) && c.Ok && c.StartMs >= afterMs).MinBy(c => c.EndMs);

    /// <summary>Every node issued and revoked again after <paramref name="killedMs"/>.</summary>
    public static bool Recovered(IEnumerable<Call> calls, int nodes, double killedMs) => Enumerable.Range(0, nodes).All(n =>
        FirstOkAfter(calls, n, killedMs, CallKind.Issue) is not null
        && FirstOkAfter(calls, n, killedMs, CallKind.RevokeTask, CallKind.RevokeToken) is not null);
}
