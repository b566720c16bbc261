namespace Broker.Server.Hosting;

/// <summary>
/// Broker.Server's exit codes. Supervisors branch on them (restart or page someone), so they never
/// change meaning; the list is in --help and docs/errors.md.
/// </summary>
public static class BrokerExitCodes
{
    /// <summary>Stopped cleanly (or --help).</summary>
    public const int Stopped = 0;

    /// <summary>Start-up refused: the configuration is wrong (BRK ids on stderr). Restarting will not help.</summary>
    public const int StartupRefused = 2;

    /// <summary>Redis Sentinel mode found no Sentinel answering: transient, a supervisor may restart.</summary>
    public const int SentinelUnreachable = 3;

    /// <summary>The node's own audit log was tampered with (BRK1040): an operator must look.</summary>
    public const int AuditTampered = 10;

    /// <summary>Another broker process holds the audit folder (BRK1160): each node needs its own folder.</summary>
    public const int AuditFolderInUse = 11;

    /// <summary>A listener could not bind (BRK1161): the port is taken or not permitted.</summary>
    public const int CannotListen = 12;
}
