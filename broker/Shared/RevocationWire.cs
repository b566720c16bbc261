using Google.Protobuf.WellKnownTypes;
using Broker.V1;
using Selector = Broker.Revocation.RevocationSelector;
using WireSelector = Broker.V1.RevocationSelector;

namespace Broker.Revocation.Wire;

/// <summary>
/// The one mapping between revocations on the wire (<c>broker.v1</c>) and the index's model. The
/// file is compiled into the broker and into the resource-server SDK (each has its own generated
/// <c>broker.v1</c> types), so a revocation is read the same way wherever it is read.
/// </summary>
internal static class RevocationWire
{
    private const string PlanningName = "planning";
    private const string ExecutionName = "execution";
    private const string RecoveryName = "recovery";

    /// <summary>
    /// Reads a selector; false with <paramref name="problem"/> for one that names no target, a
    /// target this build does not know, or a target missing its phase or time.
    /// </summary>
    public static bool TryToSelector(WireSelector selector, out Selector domain, out string problem)
    {
        Selector? read = selector.TargetCase switch
        {
            WireSelector.TargetOneofCase.TokenId => Selector.ForToken(selector.TokenId),
            WireSelector.TargetOneofCase.TaskId => Selector.ForTask(selector.TaskId),
            WireSelector.TargetOneofCase.TaskPhase when PhaseName(selector.TaskPhase.Phase) is { } phase => Selector.ForTaskPhase(selector.TaskPhase.TaskId, phase),
            WireSelector.TargetOneofCase.Agent => Selector.ForAgent(selector.Agent),
            WireSelector.TargetOneofCase.TrustDomain => Selector.ForTrustDomain(selector.TrustDomain),
            WireSelector.TargetOneofCase.IssuedBefore when selector.IssuedBefore.Time is { } before => Selector.IssuedBeforeTime(
                before.ToDateTimeOffset(),
                string.IsNullOrEmpty(selector.IssuedBefore.Agent) ? null : selector.IssuedBefore.Agent),
            _ => null,
        };
        problem = selector.TargetCase switch
        {
            _ when read is not null => "",
            WireSelector.TargetOneofCase.TaskPhase => "task_phase.phase must be planning, execution or recovery.",
            WireSelector.TargetOneofCase.IssuedBefore => "issued_before.time is required.",
            _ => "A selector must name exactly one target.",
        };
        domain = read!;
        return read is not null;
    }

    /// <summary>False for a revocation without a readable selector or an expiry.</summary>
    public static bool TryToEntry(V1.Revocation revocation, out RevocationEntry entry)
    {
        entry = null!;
        if (revocation.Selector is not { } selector || revocation.ExpiresAt is null || !TryToSelector(selector, out var domain, out _))
        {
            return false;
        }

        // Cut-off selectors (agent, task phase, trust domain) match tokens issued up to revoked_at;
        // without one, the expiry is the safe (later) cut-off.
        var revokedAt = revocation.RevokedAt?.ToDateTimeOffset() ?? revocation.ExpiresAt.ToDateTimeOffset();
        entry = new RevocationEntry(revocation.Id, domain, revocation.Actor, revocation.Reason, revokedAt, revocation.ExpiresAt.ToDateTimeOffset());
        return true;
    }

    public static WireSelector ToWire(Selector selector) => selector.Kind switch
    {
        RevocationKind.Token => new WireSelector { TokenId = selector.Value },
        RevocationKind.Task => new WireSelector { TaskId = selector.Value },
        RevocationKind.TaskPhase => new WireSelector
        {
            TaskPhase = new TaskPhaseTarget { TaskId = selector.Value, Phase = ToWirePhase(selector.Phase) },
        },
        RevocationKind.Agent => new WireSelector { Agent = selector.Value },
        RevocationKind.TrustDomain => new WireSelector { TrustDomain = selector.Value },
        RevocationKind.IssuedBefore => new WireSelector { IssuedBefore = new IssuedBeforeTarget { Time = Timestamp.FromDateTimeOffset(selector.Before!.Value) } },
        RevocationKind.AgentIssuedBefore => new WireSelector
        {
            IssuedBefore = new IssuedBeforeTarget { Time = Timestamp.FromDateTimeOffset(selector.Before!.Value), Agent = selector.Value },
        },
        _ => throw new ArgumentOutOfRangeException(nameof(selector)),
    };

    /// <summary>The whole entry, for operators (who revoked and why included).</summary>
    public static V1.Revocation ToWire(RevocationEntry entry) => new()
    {
        Id = entry.Id,
        Selector = ToWire(entry.Selector),
        Actor = entry.Actor,
        Reason = entry.Reason,
        RevokedAt = Timestamp.FromDateTimeOffset(entry.RevokedAt),
        ExpiresAt = Timestamp.FromDateTimeOffset(entry.ExpiresAt),
    };

    /// <summary>
    /// What resource servers are sent: the selector and its times, which is all they need to
    /// refuse tokens. Who revoked and why stay with operators (ListRevocations, the audit log).
    /// </summary>
    public static V1.Revocation ToStreamWire(RevocationEntry entry) => new()
    {
        Id = entry.Id,
        Selector = ToWire(entry.Selector),
        RevokedAt = Timestamp.FromDateTimeOffset(entry.RevokedAt),
        ExpiresAt = Timestamp.FromDateTimeOffset(entry.ExpiresAt),
    };

    public static Phase ToWirePhase(string? phase) => phase switch
    {
        PlanningName => Phase.Planning,
        ExecutionName => Phase.Execution,
        RecoveryName => Phase.Recovery,
        _ => Phase.Unspecified,
    };

    public static string? PhaseName(Phase phase) => phase switch
    {
        Phase.Planning => PlanningName,
        Phase.Execution => ExecutionName,
        Phase.Recovery => RecoveryName,
        _ => null,
    };
}
