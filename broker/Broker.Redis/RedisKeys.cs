using StackExchange.Redis;

namespace Broker.Redis;

/// <summary>Key names under one prefix, so several brokers (or tests) can share a Redis.</summary>
public sealed class RedisKeys
{
    private readonly string _prefix;

    public RedisKeys(string prefix = "broker:")
    {
        _prefix = prefix;
    }

    public RedisKey Task(string taskId) => _prefix + "task:" + taskId;

    public RedisKey Proof(string proofKey) => _prefix + "proof:" + proofKey;

    /// <summary>The tasks a workload holds, scored by when their record expires (ms): bounds what one workload can claim.</summary>
    public RedisKey WorkloadTasks(string workloadId) => _prefix + "workload-tasks:" + workloadId;

    public RedisKey RevocationStream => _prefix + "revocations";

    public RedisKey RevocationEpoch => _prefix + "revocations:epoch";

    public RedisKey IssuanceFreeze => _prefix + "freeze";

    public string RevocationChannel => _prefix + "revocations:notify";

    /// <summary>Current risk of an agent (<c>a</c>) or task (<c>t</c>): a hash expiring with its signal.</summary>
    public RedisKey Risk(char kind, string id) => _prefix + "risk:" + kind + ":" + id;

    /// <summary>Issuance freeze of an agent or task; no expiry (lifted by a later signal or an operator).</summary>
    public RedisKey RiskFreeze(char kind, string id) => _prefix + "risk:freeze:" + kind + ":" + id;

    /// <summary>An operator's clear: signals observed before it are ignored.</summary>
    public RedisKey RiskFloor(char kind, string id) => _prefix + "risk:floor:" + kind + ":" + id;

    /// <summary>A signal id seen, holding its content digest (idempotency).</summary>
    public RedisKey Signal(string signalId) => _prefix + "signal:" + signalId;

    /// <summary>The telemetry stream: what the runtime layer reported. Never the audit log.</summary>
    public RedisKey TelemetryStream => _prefix + "telemetry";

    /// <summary>The optional cluster-wide mirror of every node's audit records (each node's files stay the record).</summary>
    public RedisKey AuditStream => _prefix + "audit";

    /// <summary>Each node's signed audit chain head (hash: node id → head JSON); it only moves forward.</summary>
    public RedisKey AuditHeads => _prefix + "audit:heads";

    /// <summary>An approval request and its votes (a hash kept a while past its expiry, for show and audit).</summary>
    public RedisKey Approval(string id) => _prefix + "approval:" + id;

    /// <summary>Pending approval ids scored by expiry (ms), for listing.</summary>
    public RedisKey ApprovalsPending => _prefix + "approvals:pending";

    /// <summary>Pub/sub channel announcing that risk changed somewhere (no payload): every node drops its cached risk views.</summary>
    public string RiskChannel => _prefix + "risk:notify";

    /// <summary>Pub/sub channel announcing approval changes (the request id) to waiting agents on every node.</summary>
    public string ApprovalChannel => _prefix + "approvals:notify";

    /// <summary>A downstream-credential lease (docs/secrets.md): a hash with no expiry, removed only once its login is gone.</summary>
    public RedisKey Lease(string leaseId) => _prefix + "lease:" + leaseId;

    /// <summary>The node ending a lease (expires, so a crashed node's claim can be taken over).</summary>
    public RedisKey LeaseClaim(string leaseId) => _prefix + "lease:" + leaseId + ":claim";

    /// <summary>Live lease ids scored by expiry (ms).</summary>
    public RedisKey Leases => _prefix + "leases";

    /// <summary>Every Shared Signals stream id (docs/ssf.md).</summary>
    public RedisKey SsfStreams => _prefix + "ssf:streams";

    /// <summary>The key prefix of one stream's hash (configuration <c>c</c>, owner <c>o</c>, revocation cursor <c>cur</c>, <c>dropped</c> count).</summary>
    public string SsfStreamPrefix => _prefix + "ssf:stream:";

    public RedisKey SsfStream(string streamId) => SsfStreamPrefix + streamId;

    /// <summary>The stream ids one receiver owns (by a digest of its issuer and name).</summary>
    public RedisKey SsfOwnerStreams(string ownerDigest) => _prefix + "ssf:owner:" + ownerDigest;

    /// <summary>A stream's undelivered SETs: a Redis stream, oldest first (fields <c>j</c> jti, <c>s</c> the SET).</summary>
    public RedisKey SsfQueue(string streamId) => _prefix + "ssf:q:" + streamId;

    /// <summary>jti → queue entry id of a stream's undelivered SETs, for acknowledgement.</summary>
    public RedisKey SsfQueueIndex(string streamId) => _prefix + "ssf:qi:" + streamId;

    /// <summary>The node pushing a stream now (expires, so another node takes over from a crashed one).</summary>
    public RedisKey SsfPushLease(string streamId) => _prefix + "ssf:push:" + streamId;

    /// <summary>Pub/sub channel naming a stream SETs were just queued on (long polls and pushers wake on it).</summary>
    public string SsfChannel => _prefix + "ssf:notify";
}
