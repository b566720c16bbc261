using Broker.Core;
using Broker.Core.Errors;
using Broker.Revocation;
using Broker.V1;
using Google.Protobuf.WellKnownTypes;
using Selector = Broker.Revocation.RevocationSelector;
using WireSelector = Broker.V1.RevocationSelector;

namespace Broker.Server.Services;

/// <summary>Maps revocations between the wire contract and the domain.</summary>
internal static class RevocationWire
{
    public static Selector ToDomain(WireSelector selector) => selector.TargetCase switch
    {
        WireSelector.TargetOneofCase.TokenId => Selector.ForToken(selector.TokenId),
        WireSelector.TargetOneofCase.TaskId => Selector.ForTask(selector.TaskId),
        WireSelector.TargetOneofCase.TaskPhase => Selector.ForTaskPhase(
            selector.TaskPhase.TaskId,
            CredentialGrpcService.ToPhase(selector.TaskPhase.Phase)?.ToWire()
                ?? throw BrokerErrors.InvalidArgument(BrokerErrors.SelectorInvalid, "task_phase.phase must be planning, execution or recovery.")),
        WireSelector.TargetOneofCase.Agent => Selector.ForAgent(selector.Agent),
        WireSelector.TargetOneofCase.TrustDomain => Selector.ForTrustDomain(selector.TrustDomain),
        WireSelector.TargetOneofCase.IssuedBefore => Selector.IssuedBeforeTime(
            selector.IssuedBefore.Time?.ToDateTimeOffset() ?? throw BrokerErrors.InvalidArgument(BrokerErrors.SelectorInvalid, "issued_before.time is required."),
            string.IsNullOrEmpty(selector.IssuedBefore.Agent) ? null : selector.IssuedBefore.Agent),
        _ => throw BrokerErrors.InvalidArgument(BrokerErrors.SelectorInvalid, "A selector must name exactly one target."),
    };

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

    public static Broker.V1.Revocation ToWire(RevocationEntry entry) => new()
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
    public static Broker.V1.Revocation ToStreamWire(RevocationEntry entry) => new()
    {
        Id = entry.Id,
        Selector = ToWire(entry.Selector),
        RevokedAt = Timestamp.FromDateTimeOffset(entry.RevokedAt),
        ExpiresAt = Timestamp.FromDateTimeOffset(entry.ExpiresAt),
    };

    public static Broker.V1.Phase ToWirePhase(string? phase) =>
        TaskPhaseNames.TryParse(phase, out var parsed)
            ? parsed switch
            {
                TaskPhase.Planning => Broker.V1.Phase.Planning,
                TaskPhase.Execution => Broker.V1.Phase.Execution,
                _ => Broker.V1.Phase.Recovery,
            }
            : Broker.V1.Phase.Unspecified;
}
