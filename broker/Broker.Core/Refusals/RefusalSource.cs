namespace Broker.Core.Refusals;

/// <summary>
/// Who a refusal is charged to: the workload once attestation proved what it is, else the peer
/// address. A flood of bad proofs from one address therefore never spends the budget of a
/// workload that attested, wherever it connects from.
/// </summary>
public readonly record struct RefusalSource
{
    private RefusalSource(string door, string peer, string? workload)
    {
        Door = door;
        Peer = peer;
        Workload = workload;
    }

    /// <summary>Which way in was refused (<see cref="RefusalDoors"/>), for the metric and the aggregated record.</summary>
    public string Door { get; }

    /// <summary>The caller's address as <see cref="PeerAddress.Of(string?)"/> writes it.</summary>
    public string Peer { get; }

    /// <summary>The attested workload, when the refusal came after attestation.</summary>
    public string? Workload { get; }

    /// <summary>The budget's partition key; typed prefixes keep a workload named like an address apart.</summary>
    public string Partition => Workload is null ? "peer:" + Peer : "workload:" + Workload;

    public static RefusalSource FromPeer(string door, string? peer) => new(door, PeerAddress.Of(peer), null);

    public static RefusalSource FromWorkload(string door, string workload, string? peer) => new(door, PeerAddress.Of(peer), workload);
}

/// <summary>The doors a refusal budget guards (values of the metric's <c>broker.door</c> tag and of the aggregated record's detail).</summary>
public static class RefusalDoors
{
    /// <summary>A proof that did not attest, on any call that takes one (gRPC and OAuth).</summary>
    public const string Attestation = "attestation";

    /// <summary>A DPoP proof refused at the token endpoint, before attestation.</summary>
    public const string Dpop = "dpop";

    /// <summary>An attested workload's credential request refused by policy, risk or request checks.</summary>
    public const string Issuance = "issuance";

    /// <summary>A token exchange down to a sub-agent refused (subject token, delegation policy, or the sub-agent's own policy).</summary>
    public const string Delegation = "delegation";

    /// <summary>An attested workload's EndTask refused.</summary>
    public const string EndTask = "end_task";

    /// <summary>A runtime signal refused (gRPC SignalService).</summary>
    public const string Signal = "signal";

    /// <summary>A Shared Signals Security Event Token refused (<c>/ssf/events</c>).</summary>
    public const string Ssf = "ssf";

    /// <summary>An operator bearer token refused on the admin API or console.</summary>
    public const string Operator = "operator";
}
