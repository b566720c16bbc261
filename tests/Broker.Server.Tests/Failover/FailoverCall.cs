using System.Globalization;
using System.Text;
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

    /// <summary>Milliseconds from the workload's start as seconds for a report ("n/a" when unknown).</summary>
    public static string Seconds(double ms) => double.IsNaN(ms) ? "n/a" : (ms / 1000).ToString("F2", CultureInfo.InvariantCulture) + " s";

    /// <summary>The report's counts: calls, OK issuances and revocations before and after the kill, refusals by outcome.</summary>
    public static void AppendCounts(StringBuilder report, IReadOnlyCollection<Call> calls, double killedMs)
    {
        var issuedOk = calls.Where(c => c.Kind == CallKind.Issue && c.Ok).ToList();
        var revokedOk = calls.Where(c => c.Kind is CallKind.RevokeToken or CallKind.RevokeTask && c.Ok).ToList();
        report.AppendLine(CultureInfo.InvariantCulture, $"calls: {calls.Count}; issued OK: {issuedOk.Count} ({issuedOk.Count(c => c.EndMs < killedMs)} before the kill, {issuedOk.Count(c => c.StartMs >= killedMs)} after)");
        report.AppendLine(CultureInfo.InvariantCulture, $"revoked OK: {revokedOk.Count} ({revokedOk.Count(c => c.EndMs < killedMs)} before the kill, {revokedOk.Count(c => c.StartMs >= killedMs)} after; by token {revokedOk.Count(c => c.Kind == CallKind.RevokeToken)}, by task {revokedOk.Count(c => c.Kind == CallKind.RevokeTask)}); issuance retried for a task just revoked at the other node: {calls.Count(c => c.Kind == CallKind.IssueRevokedTask)}");
        var refusals = calls.Where(c => !c.Ok).GroupBy(c => (c.Kind is CallKind.RevokeTask or CallKind.RevokeToken ? "revoke" : c.Kind == CallKind.IssueRevokedTask ? "issue (revoked task)" : "issue", c.Outcome)).OrderBy(g => g.Key.Item1).ThenByDescending(g => g.Count()).ToList();
        report.AppendLine("refused:" + (refusals.Count > 0 ? "" : " none"));
        foreach (var group in refusals)
        {
            report.AppendLine(CultureInfo.InvariantCulture, $"  {group.Key.Item1,-22} {group.Key.Outcome,-40} {group.Count(),6}");
        }
    }

    /// <summary>Per node (<paramref name="nodeLabels"/> by index): from the kill to its first OK issuance and revocation.</summary>
    public static void AppendWindows(StringBuilder report, IReadOnlyCollection<Call> calls, double killedMs, IReadOnlyList<string> nodeLabels)
    {
        report.AppendLine("unavailability window (from the kill to the first OK answer after it):");
        for (var n = 0; n < nodeLabels.Count; n++)
        {
            var firstIssue = FirstOkAfter(calls, n, killedMs, CallKind.Issue);
            var firstRevoke = FirstOkAfter(calls, n, killedMs, CallKind.RevokeTask, CallKind.RevokeToken);
            var refusedDuring = calls.Count(c => c.Node == n && !c.Ok && c.StartMs >= killedMs && c.Kind != CallKind.IssueRevokedTask && c.Reason != "TASK_ENDED");
            report.AppendLine(CultureInfo.InvariantCulture, $"  {nodeLabels[n]}: issuance {Seconds((firstIssue?.EndMs ?? double.NaN) - killedMs)}, revocation {Seconds((firstRevoke?.EndMs ?? double.NaN) - killedMs)}, calls refused after the kill: {refusedDuring}");
        }
    }

    /// <summary>
    /// Repeats <paramref name="call"/> while it answers STATE_UNAVAILABLE, as an agent retries, for at most
    /// <paramref name="bound"/>: after a failover the Sentinels may still move a replica (a resync leaves the
    /// primary below min-replicas-to-write for a moment). Any other answer, or the last refusal, is returned.
    /// </summary>
    public static async Task<(Call Call, int Retries)> RetryWhileUnavailableAsync(Func<Task<Call>> call, TimeSpan bound)
    {
        Call? answer = null;
        var attempts = 0;
        await SentinelFailoverWorkload.EventuallyAsync(
            async () =>
            {
                attempts++;
                answer = await call();
                return answer is not { Status: StatusCode.Unavailable, Reason: "STATE_UNAVAILABLE" };
            },
            bound,
            "an answer other than STATE_UNAVAILABLE",
            throwOnTimeout: false);
        return (answer!, attempts - 1);
    }

    /// <summary>Every node issued and revoked again after <paramref name="killedMs"/>.</summary>
    public static bool Recovered(IEnumerable<Call> calls, int nodes, double killedMs) => Enumerable.Range(0, nodes).All(n =>
        FirstOkAfter(calls, n, killedMs, CallKind.Issue) is not null
        && FirstOkAfter(calls, n, killedMs, CallKind.RevokeTask, CallKind.RevokeToken) is not null);
}
