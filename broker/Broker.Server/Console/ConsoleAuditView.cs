using System.Security.Cryptography;
using Broker.Core.Audit;
using Broker.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Broker.Server.OperatorConsole;

/// <summary>What the audit page shows: a search over this node's segments and the chain's verification.</summary>
public sealed class ConsoleAuditView(FileAuditSink sink, IOptions<BrokerOptions> options)
{
    public const int MaxRows = 500;

    /// <summary>The newest matches, newest first (the same filter as <c>brokerctl audit query</c>).</summary>
    public IReadOnlyList<AuditLine> Search(AuditFilter filter, int limit) =>
        filter.Apply(AuditReader.ReadAll([sink.Directory]), Math.Clamp(limit, 1, MaxRows)).AsEnumerable().Reverse().ToList();

    /// <summary>Verifies this node's chain and lists its checkpoints; signatures are checked against this node's checkpoint key.</summary>
    public (AuditVerifyResult Result, IReadOnlyList<AuditCheckpoint> Checkpoints) Verify()
    {
        using var key = CheckpointPublicKey();
        var result = AuditVerifier.Verify([sink.Directory], key);
        var checkpoints = AuditReader.ReadAll([sink.Directory])
            .Select(r => r.Event.Checkpoint)
            .OfType<AuditCheckpoint>()
            .ToList();
        return (result, checkpoints);
    }

    private ECDsa? CheckpointPublicKey()
    {
        var path = options.Value.Audit.CheckpointKeyPath;
        if (string.IsNullOrEmpty(path) || !File.Exists(path))
        {
            return null;
        }

        using var key = ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(path));
        var pub = ECDsa.Create();
        pub.ImportSubjectPublicKeyInfo(key.ExportSubjectPublicKeyInfo(), out _);
        return pub;
    }
}
