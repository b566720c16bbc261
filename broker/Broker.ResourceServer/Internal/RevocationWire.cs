using Broker.Revocation;
using Broker.V1;
using Selector = Broker.Revocation.RevocationSelector;
using WireSelector = Broker.V1.RevocationSelector;

namespace Broker.ResourceServer.Internal;

/// <summary>Reads revocations off the wire into the index's model.</summary>
internal static class RevocationWire
{
    /// <summary>False for a selector this SDK cannot read (none set, or one a newer broker added).</summary>
    public static bool TryToEntry(V1.Revocation revocation, out RevocationEntry entry)
    {
        entry = null!;
        if (revocation.Selector is not { } selector || revocation.ExpiresAt is null)
        {
            return false;
        }

        Selector? domain = selector.TargetCase switch
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
        if (domain is null)
        {
            return false;
        }

        // Cut-off selectors (agent, task phase, trust domain) match tokens issued up to revoked_at;
        // without one, the expiry is the safe (later) cut-off.
        var revokedAt = revocation.RevokedAt?.ToDateTimeOffset() ?? revocation.ExpiresAt.ToDateTimeOffset();
        entry = new RevocationEntry(revocation.Id, domain, revocation.Actor, revocation.Reason, revokedAt, revocation.ExpiresAt.ToDateTimeOffset());
        return true;
    }

    public static string? PhaseName(Phase phase) => phase switch
    {
        Phase.Planning => BrokerPhases.Planning,
        Phase.Execution => BrokerPhases.Execution,
        Phase.Recovery => BrokerPhases.Recovery,
        _ => null,
    };
}
