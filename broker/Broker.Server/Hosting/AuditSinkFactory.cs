using System.Security.Cryptography;
using Broker.Core.Audit;

namespace Broker.Server.Hosting;

/// <summary>Builds the audit sink from configuration; anything unusable stops start-up with a stable id.</summary>
internal static class AuditSinkFactory
{
    public static FileAuditSink Create(BrokerOptions options, TimeProvider time, ILogger<FileAuditSink> logger, Broker.Core.Diagnostics.BrokerMetrics metrics, IAuditMirror? mirror = null, IAuditHeadStore? heads = null)
    {
        if (options.Audit.MirrorToRedis && mirror is null)
        {
            throw new BrokerStartupException(["BRK1012: Broker:Audit:MirrorToRedis needs Broker:Redis:Configuration (the mirror is a Redis stream)."]);
        }

        var key = LoadCheckpointKey(options);
        try
        {
            return new FileAuditSink(
                new FileAuditOptions
                {
                    Directory = options.AuditPath,
                    NodeId = string.IsNullOrWhiteSpace(options.NodeId) ? null : options.NodeId,
                    SegmentMaxBytes = options.Audit.SegmentMaxBytes,
                    SegmentMaxAge = options.Audit.SegmentMaxAge,
                    CheckpointKey = key,
                    Mirror = mirror,
                    Metrics = metrics,
                    HeadStore = heads,
                    HeadPublishInterval = options.Audit.HeadPublishInterval,
                    AcknowledgeTamper = string.IsNullOrWhiteSpace(options.Audit.AcknowledgeTamper) ? null : options.Audit.AcknowledgeTamper.Trim(),
                    VerifySegmentsAtStart = options.Audit.VerifySegmentsAtStart,
                },
                time,
                logger);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or InvalidDataException)
        {
            throw new BrokerStartupException([$"BRK1005: the audit log at '{options.AuditPath}' is unusable: {ex.Message}"]);
        }
    }

    private static ECDsa LoadCheckpointKey(BrokerOptions options)
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(File.ReadAllText(options.Audit.CheckpointKeyPath));
            if (key.KeySize != 256)
            {
                throw new CryptographicException("it is not an EC P-256 key");
            }

            // Proves the file holds the private half.
            _ = key.SignData([0], HashAlgorithmName.SHA256);
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException or IOException or UnauthorizedAccessException)
        {
            key.Dispose();
            throw new BrokerStartupException([$"BRK1010: the audit checkpoint key '{options.Audit.CheckpointKeyPath}' is unusable: {ex.Message} (a PEM EC P-256 private key)."]);
        }

        var checkpointPublic = key.ExportSubjectPublicKeyInfo();
        foreach (var signing in options.Signing.Keys)
        {
            try
            {
                using var other = ECDsa.Create();
                other.ImportFromPem(File.ReadAllText(signing.Path));
                if (other.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(checkpointPublic))
                {
                    key.Dispose();
                    throw new BrokerStartupException(["BRK1011: the audit checkpoint key is also a token-signing key; use a distinct key so one leak cannot forge both tokens and audit checkpoints."]);
                }
            }
            catch (Exception ex) when (ex is ArgumentException or CryptographicException or IOException)
            {
                // Unusable signing keys are reported by the key ring (BRK1008).
            }
        }

        return key;
    }
}
