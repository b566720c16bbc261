namespace Broker.Server.Hosting;

/// <summary>Everything the host needs, bound from the <c>Broker</c> configuration section.</summary>
public sealed class BrokerOptions
{
    public const string Section = "Broker";

    /// <summary>True only with --dev: in-memory state, generated keys, loopback, sample policy.</summary>
    public bool Dev { get; set; }

    /// <summary>Folder where --dev writes its trust key, policy and audit log.</summary>
    public string DevDirectory { get; set; } = ".dev";

    /// <summary>--dev only: a local PostgreSQL connection (with its password) for the dev orders-db engine (docs/secrets.md).</summary>
    public string DevPostgres { get; set; } = "";

    /// <summary><c>iss</c> of every token and base of the discovery document, e.g. https://broker.example.org.</summary>
    public string Issuer { get; set; } = "";

    /// <summary>The audience attestation proofs must name; defaults to <see cref="Issuer"/>.</summary>
    public string Audience { get; set; } = "";

    /// <summary>
    /// The longest lifetime any token can have: issuance caps every token at it, revocation
    /// entries and the revocation log are kept for it past what they cover, and a retired
    /// signing key stays published for it. Resource servers set the same value in the SDK.
    /// </summary>
    public TimeSpan MaxTokenLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>The one clock difference tolerated by every time check (see <see cref="ClockSkewSettings"/>).</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Serve gRPC server reflection (service and message descriptions, for grpcurl and the like).
    /// Unset: on in --dev, off in production, where it only helps a caller map the attack surface.
    /// </summary>
    public bool? GrpcReflection { get; set; }

    /// <summary>Path of the policy YAML file.</summary>
    public string PolicyPath { get; set; } = "";

    /// <summary>Folder of the append-only audit log: hash-chained segments and their signed checkpoints (docs/audit.md).</summary>
    public string AuditPath { get; set; } = "";

    /// <summary>This node's id in audit records and segment names; when empty, one is generated once and kept in the audit folder.</summary>
    public string NodeId { get; set; } = "";

    public AuditSettings Audit { get; set; } = new();

    /// <summary>Path of the runtime-risk telemetry file (signals as reported); default: telemetry.log next to the audit file. Never the audit file.</summary>
    public string TelemetryPath { get; set; } = "";

    public RedisSettings Redis { get; set; } = new();

    public SigningSettings Signing { get; set; } = new();

    public OperatorOptions Operators { get; set; } = new();

    public Core.Revocation.RevocationOptions Revocation { get; set; } = new();

    /// <summary>
    /// Redis replicas that must acknowledge a write before it is reported done (WAIT): revocations,
    /// the epoch, the freeze and approval requests and decisions.
    /// </summary>
    public int RevocationMinReplicas { get; set; }

    public ObservabilitySettings Observability { get; set; } = new();

    public ApprovalSettings Approvals { get; set; } = new();

    public IssuanceSettings Issuance { get; set; } = new();
}

public sealed class IssuanceSettings
{
    /// <summary>
    /// Decide a repeat issuance (a task this node confirmed in Redis, same workload, same phase)
    /// from memory the revocation feed keeps current, without a Redis round trip. Off by default:
    /// it trades the promise that nothing is issued once Redis loses its data for speed
    /// (docs/design/issuance-state.md).
    /// </summary>
    public bool RepeatFromMemory { get; set; }

    /// <summary>Most tasks a node remembers for <see cref="RepeatFromMemory"/>.</summary>
    public int RepeatFromMemoryMaxTasks { get; set; } = 100_000;
}

public sealed class AuditSettings
{
    /// <summary>PEM EC P-256 private key that signs audit checkpoints; never the token-signing key. Required outside --dev.</summary>
    public string CheckpointKeyPath { get; set; } = "";

    /// <summary>A segment is closed and checkpointed at this size.</summary>
    public long SegmentMaxBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>A segment is closed and checkpointed at this age: the longest its tail goes unsigned.</summary>
    public TimeSpan SegmentMaxAge { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Also copy every durable record to the Redis stream <c>{prefix}audit</c> (after the local fsync; needs Broker:Redis).</summary>
    public bool MirrorToRedis { get; set; }

    /// <summary>Approximate bound of the mirror stream (<c>XADD MAXLEN ~ N</c>).</summary>
    public int MirrorMaxLength { get; set; } = 1_000_000;

    /// <summary>
    /// The fingerprint a refused start printed (BRK1040): start anyway, recording exactly those
    /// findings in an <c>audit.tamper_acknowledged</c> record (<c>--acknowledge-tamper</c>).
    /// </summary>
    public string AcknowledgeTamper { get; set; } = "";

    /// <summary>How many of the newest segments start-up checks record by record (0: all); older ones are checked for gaps.</summary>
    public int VerifySegmentsAtStart { get; set; } = 8;

    /// <summary>
    /// Shortest pause between two publications of the signed chain head to Redis. Under load the
    /// head moves with every group commit; publishing each move costs a signature and a durable
    /// Redis write. The head off the host trails the log by at most this (plus one round trip).
    /// </summary>
    public TimeSpan HeadPublishInterval { get; set; } = TimeSpan.FromMilliseconds(20);
}

public sealed class ApprovalSettings
{
    /// <summary>How often each node marks (and audits) requests that expired unseen and counts pending ones.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Where to POST signed notices of approval moves (https://, or http:// on loopback); empty: none.</summary>
    public string WebhookUrl { get; set; } = "";

    /// <summary>File holding the webhook's shared HMAC key (at least 32 bytes); required with <see cref="WebhookUrl"/>.</summary>
    public string WebhookKeyPath { get; set; } = "";
}

public sealed class RedisSettings
{
    /// <summary>StackExchange.Redis configuration string, e.g. <c>redis-1:6379,ssl=true,password=...</c>.</summary>
    public string Configuration { get; set; } = "";

    public string KeyPrefix { get; set; } = "broker:";
}

public sealed class SigningSettings
{
    /// <summary>Signing keys (PEM EC private keys) and when each starts signing.</summary>
    public List<SigningKeySettings> Keys { get; set; } = [];

    /// <summary>How long before it signs a key is published in JWKS (≥ resource servers' JWKS cache time).</summary>
    public TimeSpan PublishAhead { get; set; } = TimeSpan.FromHours(1);
}

public sealed class SigningKeySettings
{
    public string Path { get; set; } = "";

    /// <summary>When the key starts signing; absent means "since forever" (the first key).</summary>
    public DateTimeOffset? NotBefore { get; set; }
}
